//! Sites: making, finding and deleting the isolated worlds one server holds, and remembering
//! them, so that reaching a site costs a map lookup rather than a statement.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::clock::SharedClock;
use crate::domain::{CloudId, DEFAULT_SITE, Site, SiteName};
use crate::error::{Error, Result};
use crate::store::admin::CreatedSite;
use crate::store::admin::Snapshot;
use crate::store::{SeedData, SeedReport, Store};

/// How long a site found is trusted before it is read again. Another instance over the same
/// database may delete a site; until then this one still reaches it, and finds it empty.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// The sites of one store.
#[derive(Debug)]
pub struct SiteService {
    store: Store,
    /// Most sites the store may hold, `default` included.
    most: u64,
    known: RwLock<Known>,
    clock: SharedClock,
    /// What each site's seed made, by site name: the start seed's sites, and the sites made
    /// through this instance with a seed. `POST /_admin/reset?to=seed` returns to it.
    seeds: RwLock<HashMap<String, Arc<Snapshot>>>,
}

/// Sites found lately, by name and by cloudId.
#[derive(Debug, Default)]
struct Known {
    by_name: HashMap<String, Found>,
    by_id: HashMap<CloudId, Found>,
}

#[derive(Debug, Clone)]
struct Found {
    site: Arc<Site>,
    at: Instant,
}

/// A site to make.
#[derive(Debug, Default)]
pub struct NewSite {
    /// Its name.
    pub name: Option<SiteName>,
    /// Its cloudId; random when not given.
    pub id: Option<CloudId>,
    /// What it starts with.
    pub seed: SeedData,
}

/// How a request names a site in the admin API: by cloudId or by name.
pub enum SiteReference<'a> {
    /// A cloudId.
    Id(CloudId),
    /// A name.
    Name(&'a str),
}

impl<'a> SiteReference<'a> {
    /// A UUID is a cloudId; anything else a name.
    pub fn parse(text: &'a str) -> Self {
        CloudId::parse(text).map_or(Self::Name(text), Self::Id)
    }
}

impl SiteService {
    /// The sites of `store`, at most `most` of them.
    pub fn new(store: Store, most: u64, clock: SharedClock) -> Self {
        Self {
            store,
            most,
            known: RwLock::new(Known::default()),
            clock,
            seeds: RwLock::new(HashMap::new()),
        }
    }

    /// Notes what the start seed made of each site, by site name.
    pub fn remember_seeds(&self, seeds: Vec<(String, Snapshot)>) {
        let mut held = self.seeds.write().unwrap_or_else(|e| e.into_inner());
        held.extend(
            seeds
                .into_iter()
                .map(|(name, state)| (name, Arc::new(state))),
        );
    }

    /// What a site's seed made; an empty state for a site made without one.
    pub fn seed_of(&self, site: &Site) -> Arc<Snapshot> {
        let held = self.seeds.read().unwrap_or_else(|e| e.into_inner());
        held.get(site.name.as_str()).cloned().unwrap_or_default()
    }

    /// The `default` site, which always exists.
    pub async fn default_site(&self) -> Result<Arc<Site>> {
        self.named(DEFAULT_SITE)
            .await?
            .ok_or_else(|| Error::Internal("the default site is missing".to_owned()))
    }

    /// The site with this name.
    pub async fn named(&self, name: &str) -> Result<Option<Arc<Site>>> {
        if let Some(site) = self.remembered(|known| known.by_name.get(name)) {
            return Ok(Some(site));
        }
        let found = self.store.site_named(name).await?;
        Ok(self.remember(found, |known| known.by_name.remove(name)))
    }

    /// The site with this cloudId.
    pub async fn with_id(&self, id: CloudId) -> Result<Option<Arc<Site>>> {
        if let Some(site) = self.remembered(|known| known.by_id.get(&id)) {
            return Ok(Some(site));
        }
        let found = self.store.site_with_id(id).await?;
        Ok(self.remember(found, |known| known.by_id.remove(&id)))
    }

    /// The site a reference names.
    pub async fn find(&self, reference: SiteReference<'_>) -> Result<Arc<Site>> {
        let found = match reference {
            SiteReference::Id(id) => self.with_id(id).await?,
            SiteReference::Name(name) => self.named(name).await?,
        };
        found.ok_or(Error::SiteNotFound)
    }

    /// Every site, oldest (`default`) first.
    pub async fn list(&self) -> Result<Vec<Site>> {
        Ok(self.store.sites().await?)
    }

    /// Makes a site with its seed, in one transaction.
    pub async fn create(&self, new: NewSite) -> Result<(Arc<Site>, SeedReport)> {
        let name = new.name.ok_or_else(|| {
            Error::BadRequest(
                "A site needs a name: 1 to 63 lowercase letters, digits or '-'.".into(),
            )
        })?;
        let id = match new.id {
            Some(id) => id,
            None => CloudId::random()
                .ok_or_else(|| Error::Internal("no randomness for a cloudId".to_owned()))?,
        };
        let created = self
            .store
            .create_site(id, &name, &new.seed, self.most)
            .await?;
        match created {
            CreatedSite::Created(site, report) => {
                let site = Arc::new(site);
                self.forget(&site);
                self.seeds
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.as_str().to_owned(), Arc::new(new.seed.to_snapshot()));
                Ok((site, report))
            }
            CreatedSite::NameTaken => Err(Error::Conflict(format!(
                "A site named '{name}' exists already."
            ))),
            CreatedSite::IdTaken => Err(Error::Conflict(format!(
                "A site with id '{id}' exists already."
            ))),
            CreatedSite::TooMany => Err(Error::Conflict(format!(
                "This server holds at most {} sites (--max-sites).",
                self.most
            ))),
            CreatedSite::SeedConflict(_) => Err(Error::BadRequest(
                "The site's seed gives two users the same email or token.".to_owned(),
            )),
        }
    }

    /// Deletes a site and everything of it; `default` stays.
    pub async fn delete(&self, site: &Site) -> Result<()> {
        if site.is_default() {
            return Err(Error::Conflict(
                "The default site cannot be deleted.".to_owned(),
            ));
        }
        let deleted = self.store.delete_site(site.key).await?;
        self.forget(site);
        self.seeds
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(site.name.as_str());
        if deleted {
            Ok(())
        } else {
            Err(Error::SiteNotFound)
        }
    }

    /// A site found lately enough to trust.
    fn remembered(&self, get: impl FnOnce(&Known) -> Option<&Found>) -> Option<Arc<Site>> {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        let found = get(&known)?;
        (self.clock.now().saturating_duration_since(found.at) < TRUSTED_FOR)
            .then(|| found.site.clone())
    }

    /// Holds what was found; for a site not found, `unknown` drops what was held under the
    /// name or id looked for.
    fn remember(
        &self,
        found: Option<Site>,
        unknown: impl FnOnce(&mut Known) -> Option<Found>,
    ) -> Option<Arc<Site>> {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        let Some(site) = found else {
            unknown(&mut known);
            return None;
        };
        Some(self.hold(&mut known, site))
    }

    /// Holds a site under both its name and its cloudId.
    fn hold(&self, known: &mut Known, site: Site) -> Arc<Site> {
        let found = Found {
            site: Arc::new(site),
            at: self.clock.now(),
        };
        let site = found.site.clone();
        known
            .by_name
            .insert(site.name.as_str().to_owned(), found.clone());
        known.by_id.insert(site.id, found);
        site
    }

    /// Drops what is held of a site, so that the next request reads it again.
    fn forget(&self, site: &Site) {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        known.by_name.remove(site.name.as_str());
        known.by_id.remove(&site.id);
    }
}
