//! Cache keys of text in a site (an email key, an account id), and their borrowed lookups.

use quick_cache::Equivalent;

use crate::domain::SiteKey;

/// An email key or account id in a site.
#[derive(PartialEq, Eq, Hash)]
pub(super) struct InSite {
    pub(super) site: SiteKey,
    pub(super) text: Box<str>,
}

/// Looks an [`InSite`] up without building one; hashes exactly as one.
#[derive(Hash)]
pub(super) struct InSiteLookup<'a> {
    pub(super) site: SiteKey,
    pub(super) text: &'a str,
}

impl Equivalent<InSite> for InSiteLookup<'_> {
    fn equivalent(&self, stored: &InSite) -> bool {
        stored.site == self.site && *stored.text == *self.text
    }
}

pub(super) fn in_site(site: SiteKey, text: &str) -> InSite {
    InSite {
        site,
        text: text.into(),
    }
}
