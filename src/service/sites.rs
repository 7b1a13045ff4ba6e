//! Sites: making, finding and deleting the isolated worlds one server holds, and remembering
//! them, so that reaching a site costs a map lookup rather than a statement. Past 350 lines only
//! with its tests.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::clock::SharedClock;
use crate::domain::{CloudId, DEFAULT_SITE, Site, SiteName};
use crate::error::{Error, Result};
use crate::snapshot;
use crate::store::admin::CreatedSite;
use crate::store::admin::Snapshot;
use crate::store::{SeedData, SeedReport, Store};

/// How long a site found is trusted before it is read again. Another instance over the same
/// database may delete a site; until then this one still reaches it, and finds it empty. When
/// the trust runs out, one request reads the site again while the others in flight go on with
/// what is held, rather than all reading it at once each second.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// The sites of one store.
#[derive(Debug)]
pub struct SiteService {
    store: Store,
    /// Most sites the store may hold, `default` included.
    most: u64,
    known: RwLock<Known>,
    clock: SharedClock,
    /// What the start seed made of each of its sites, by site name: what `POST
    /// /_admin/reset?to=seed` returns to for a site that keeps no seed in the store (`default`).
    seeds: RwLock<HashMap<String, Arc<Snapshot>>>,
}

/// Sites found lately, by name and by cloudId.
#[derive(Debug, Default)]
struct Known {
    by_name: HashMap<String, Found>,
    by_id: HashMap<CloudId, Found>,
    /// How many times sites were dropped: a read begun before a drop is not held after it, or
    /// a site deleted meanwhile would be trusted again.
    drops: u64,
}

#[derive(Debug, Clone)]
struct Found {
    site: Arc<Site>,
    at: Instant,
    /// When a request began reading this site again, its trust having run out.
    reread_since: Option<Instant>,
}

/// How a request names the site it looks for.
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    Name(&'a str),
    Id(CloudId),
}

impl Known {
    fn get(&self, key: Key<'_>) -> Option<&Found> {
        match key {
            Key::Name(name) => self.by_name.get(name),
            Key::Id(id) => self.by_id.get(&id),
        }
    }

    /// Drops what is held under a name or cloudId that names no site now.
    fn drop_key(&mut self, key: Key<'_>) {
        match key {
            Key::Name(name) => self.by_name.remove(name),
            Key::Id(id) => self.by_id.remove(&id),
        };
    }

    /// For a site whose trust has run out: what is held while another request reads it again,
    /// or `None` once this request is marked as the one to read it. A read that never finished
    /// (it failed, or its request went away) gives way to another after [`TRUSTED_FOR`].
    fn claim_reread(&mut self, key: Key<'_>, now: Instant) -> Option<Arc<Site>> {
        let found = match key {
            Key::Name(name) => self.by_name.get_mut(name),
            Key::Id(id) => self.by_id.get_mut(&id),
        }?;
        let rereading = found
            .reread_since
            .is_some_and(|since| now.saturating_duration_since(since) < TRUSTED_FOR);
        if found.trusted(now) || rereading {
            return Some(found.site.clone());
        }
        found.reread_since = Some(now);
        None
    }

    /// Holds a site read when `drops` was `read_at`, unless a site was dropped since: then it
    /// only passes the site on, for the request that read it.
    fn hold_if_undropped(&mut self, site: Site, read_at: u64, now: Instant) -> Arc<Site> {
        if self.drops != read_at {
            return Arc::new(site);
        }
        self.hold(site, now)
    }

    /// Holds a site under both its name and its cloudId, trusted from `now`.
    fn hold(&mut self, site: Site, now: Instant) -> Arc<Site> {
        let found = Found {
            site: Arc::new(site),
            at: now,
            reread_since: None,
        };
        let site = found.site.clone();
        self.by_name
            .insert(site.name.as_str().to_owned(), found.clone());
        self.by_id.insert(site.id, found);
        site
    }
}

impl Found {
    fn trusted(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.at) < TRUSTED_FOR
    }
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

    /// What a site's seed made: the seed the site was made with (by the admin API or a start
    /// seed, on any instance), kept in the store; else, for `default` and sites made before
    /// seeds were kept, this instance's start seed's part for it; else an empty state.
    pub async fn seed_of(&self, site: &Site) -> Result<Arc<Snapshot>> {
        let Some(kept) = self.store.site_seed(site.key).await? else {
            let held = self.seeds.read().unwrap_or_else(|e| e.into_inner());
            return Ok(held.get(site.name.as_str()).cloned().unwrap_or_default());
        };
        // A seed may be large: it is parsed off the runtime's threads.
        let parse = move || snapshot::from_json(Path::new("the site's seed"), &kept);
        let parsed = tokio::task::spawn_blocking(parse)
            .await
            .map_err(|e| Error::Internal(format!("site {}: {e}", site.name.as_str())))?;
        // Taken when the site was made, it may fail rules a later version added.
        let snapshot = parsed.map_err(|e| {
            Error::Conflict(format!(
                "The site's seed, kept from when the site was made, fails this version's seed \
                 rules, so the site cannot return to it: {e}"
            ))
        })?;
        Ok(Arc::new(snapshot))
    }

    /// The `default` site, which always exists.
    pub async fn default_site(&self) -> Result<Arc<Site>> {
        self.named(DEFAULT_SITE)
            .await?
            .ok_or_else(|| Error::Internal("the default site is missing".to_owned()))
    }

    /// The site with this name.
    pub async fn named(&self, name: &str) -> Result<Option<Arc<Site>>> {
        if let Some(site) = self.remembered(Key::Name(name)) {
            return Ok(Some(site));
        }
        // A name no site can have is not looked up (PostgreSQL could not even compare NUL).
        if !SiteName::is_valid(name) {
            return Ok(None);
        }
        let read_at = self.drops();
        let found = self.store.site_named(name).await?;
        Ok(self.remember(found, Key::Name(name), read_at))
    }

    /// The site with this cloudId.
    pub async fn with_id(&self, id: CloudId) -> Result<Option<Arc<Site>>> {
        if let Some(site) = self.remembered(Key::Id(id)) {
            return Ok(Some(site));
        }
        let read_at = self.drops();
        let found = self.store.site_with_id(id).await?;
        Ok(self.remember(found, Key::Id(id), read_at))
    }

    /// The site a reference names, read from the store rather than remembered: the admin API
    /// and the console act on sites, and must not act on one that another instance has deleted
    /// or made again meanwhile. What is read is remembered for the requests that follow.
    pub async fn find(&self, reference: SiteReference<'_>) -> Result<Arc<Site>> {
        let read_at = self.drops();
        let found = match reference {
            SiteReference::Id(id) => {
                let found = self.store.site_with_id(id).await?;
                self.remember(found, Key::Id(id), read_at)
            }
            // A name no site can have is not looked up (PostgreSQL could not even compare NUL).
            SiteReference::Name(name) if !SiteName::is_valid(name) => None,
            SiteReference::Name(name) => {
                let found = self.store.site_named(name).await?;
                self.remember(found, Key::Name(name), read_at)
            }
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
        let seed = new.seed;
        let written = super::off_runtime(move || {
            snapshot::to_json(&seed.to_snapshot()).map(|kept| (seed, kept))
        });
        let (seed, kept) = written
            .await
            .map_err(|e| Error::Internal(format!("the site's seed as a snapshot: {e}")))?;
        let kept = String::from_utf8(kept).map_err(|e| Error::Internal(e.to_string()))?;
        let created = self
            .store
            .create_site(id, &name, &seed, &kept, self.most)
            .await?;
        match created {
            CreatedSite::Created(site, report) => {
                let site = Arc::new(site);
                self.drop_remembered(&site);
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
        self.drop_remembered(site);
        // A site made later with this name is not the start seed's.
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

    /// A site found lately enough to trust, or held while another request reads it again;
    /// `None`: read it.
    fn remembered(&self, key: Key<'_>) -> Option<Arc<Site>> {
        let now = self.clock.now();
        {
            let known = self.known.read().unwrap_or_else(|e| e.into_inner());
            let found = known.get(key)?;
            if found.trusted(now) {
                return Some(found.site.clone());
            }
        }
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .claim_reread(key, now)
    }

    /// How many times sites were dropped, before a read that may be held.
    fn drops(&self) -> u64 {
        self.known.read().unwrap_or_else(|e| e.into_inner()).drops
    }

    /// Holds what was found by a read begun at `read_at` drops; for a site not found, drops
    /// what was held under `key`.
    fn remember(&self, found: Option<Site>, key: Key<'_>, read_at: u64) -> Option<Arc<Site>> {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        let Some(site) = found else {
            known.drop_key(key);
            return None;
        };
        Some(known.hold_if_undropped(site, read_at, self.clock.now()))
    }

    /// Drops what is held of a site, so that the next request reads it again, and so that no
    /// read begun before puts it back.
    fn drop_remembered(&self, site: &Site) {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        known.by_name.remove(site.name.as_str());
        known.by_id.remove(&site.id);
        known.drops += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SiteKey;

    fn site(name: &str) -> Site {
        Site {
            key: SiteKey(7),
            id: CloudId::parse("00000000-0000-4000-8000-000000000007").expect("a cloudId"),
            name: SiteName::parse(name).expect("a name"),
        }
    }

    #[test]
    fn a_site_read_before_a_drop_is_passed_on_but_not_held() {
        let now = Instant::now();
        let mut known = Known::default();
        let read_at = known.drops;
        // Deleted meanwhile: `drop_remembered` drops its keys and counts.
        known.drops += 1;
        let passed = known.hold_if_undropped(site("s7"), read_at, now);
        assert_eq!(passed.name.as_str(), "s7", "the reader gets what it read");
        assert!(known.get(Key::Name("s7")).is_none(), "nothing is held");
        known.hold_if_undropped(site("s7"), known.drops, now);
        assert!(
            known.get(Key::Name("s7")).is_some(),
            "a read begun after is"
        );
    }

    #[test]
    fn once_trust_runs_out_one_request_reads_the_site_again_and_the_others_go_on_with_it() {
        let start = Instant::now();
        let mut known = Known::default();
        known.hold(site("s7"), start);
        let id = Key::Id(known.get(Key::Name("s7")).expect("held").site.id);
        for key in [Key::Name("s7"), id] {
            assert!(known.claim_reread(key, start).is_some(), "trusted: {key:?}");
            let expired = start + TRUSTED_FOR;
            assert!(known.claim_reread(key, expired).is_none(), "first: {key:?}");
            for _ in 0..3 {
                let held = known.claim_reread(key, expired + Duration::from_millis(5));
                assert_eq!(
                    held.map(|s| s.name.as_str().to_owned()).as_deref(),
                    Some("s7")
                );
            }
            // A read that never finished gives way to another.
            assert!(
                known.claim_reread(key, expired + TRUSTED_FOR).is_none(),
                "{key:?}"
            );
        }
        // A finished read is trusted afresh.
        let later = start + 3 * TRUSTED_FOR;
        known.hold(site("s7"), later);
        assert!(known.claim_reread(Key::Name("s7"), later).is_some());
        assert!(
            known
                .get(Key::Name("s7"))
                .is_some_and(|found| found.reread_since.is_none())
        );
        known.drop_key(Key::Name("s7"));
        assert!(known.claim_reread(Key::Name("s7"), later).is_none());
    }
}
