//! The SQLite store's read cache of accounts, users, values and key lists: written through by
//! the writer, filled by reads, and dropped whenever another connection changes the file.
//!
//! Not to be confused with `sqlite::memory:`, a database that lives in memory: this is a cache
//! in front of any SQLite database, and one in front of a file also polls for changes by others.
//!
//! Longer than most files, and one idea: what the cache holds is only as good as its rules for
//! filling (the fill guard) and for answering (the trust window, fed by the poll), so the maps
//! and both rules stay together. A good quarter of it is tests.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Equivalent, Weighter};
use sqlx::SqlitePool;
use tokio::sync::Notify;

use super::super::in_site::{InSite, InSiteLookup, in_site};
use super::super::oauth::Access;
use super::super::{Account, TokenOwner};
use crate::clock::SharedClock;
use crate::credentials::TokenDigest;
use crate::domain::{PropertyValue, SiteKey, User};

/// Epoch counters for values and key lists, chosen by account: a write to one account does not
/// spoil fills for the others.
const STRIPES: usize = 64;
/// A cached answer is given only if the file was last seen unchanged by others this recently.
pub(super) const TRUSTED_FOR_MS: u64 = 50;
/// How often the writer polls for changes by others while requests are coming in.
pub(super) const POLL_EVERY_MS: u64 = 10;
/// After this long without requests the writer stops polling until the next request.
const IDLE_AFTER_MS: u64 = 1_000;
/// Users, accounts and tokens held, each.
const ACCOUNTS_HELD: usize = 10_000;
/// What a value entry costs beside its texts: the cache's slot and index for it, and the
/// allocator's rounding and headers of its three allocations (account id, key, value). Weighing
/// text alone let 8 MiB of values take about 15 MiB of heap.
const ENTRY_OVERHEAD: u64 = 160;
/// What each key of a held key list costs beside its text: the `String` and its allocation.
const LISTED_KEY_OVERHEAD: usize = 40;

/// What the store keeps of its reads. Each lookup is a read-through: the caller hands over the
/// database read, which runs on a miss, or whenever the cache may not answer (see
/// [`ReadCache::answers`]). Every fill follows one rule, which keeps a slow read
/// from putting back a value that a write has already replaced: take a [`FillGuard`] before
/// reading the database, and insert after only if the guard's epoch has not moved meanwhile,
/// checked and inserted under the epoch's lock. Writers bump the epoch after they commit and
/// update the cache under that lock, so no reader sees a fill's older value even for a moment.
pub(super) struct ReadCache {
    /// Known tokens only, like `accounts`: `None` is never kept.
    tokens: Cache<(SiteKey, TokenDigest), Option<Arc<TokenOwner>>>,
    /// OAuth access tokens, known ones only; dropped whenever one may have been revoked.
    access: Cache<(SiteKey, TokenDigest), Option<Arc<Access>>>,
    accounts: Cache<InSite, Option<Arc<Account>>>,
    users: Cache<InSite, Option<User>>,
    values: Cache<ValueKey, Option<PropertyValue>, ValueWeight>,
    key_lists: Cache<InSite, Arc<[String]>, KeyListWeight>,
    /// Bumped whenever users or tokens may have changed.
    accounts_epoch: Epoch,
    stripes: [Epoch; STRIPES],
    hasher: DefaultHashBuilder,
    /// Whether the cache keeps anything: it is off when given no room.
    on: bool,
    /// Whether other connections can write the file (not an in-memory database).
    others_may_write: bool,
    clock: SharedClock,
    started: Instant,
    /// When the file was last seen unchanged by others, in ms since `started`, plus one; 0
    /// until the first poll.
    unchanged_at: AtomicU64,
    /// When a request last asked, in ms since `started`; polling stops when it is long ago.
    asked_at: AtomicU64,
    /// Wakes the writer to poll after an idle spell.
    poll_wanted: Notify,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("values", &self.values.len())
            .field("key_lists", &self.key_lists.len())
            .field("on", &self.on)
            .field("others_may_write", &self.others_may_write)
            .finish_non_exhaustive()
    }
}

/// A read from the database, started only when the cache cannot answer. A function that makes
/// the future rather than the future itself: the future holds a connection acquire and a query,
/// kilobytes that a hit would otherwise build and copy through every call only to drop.
pub(super) trait Read<T>: FnOnce() -> Self::Reading {
    /// The read under way.
    type Reading: Future<Output = sqlx::Result<T>>;
}

impl<T, F, R> Read<T> for F
where
    F: FnOnce() -> R,
    R: Future<Output = sqlx::Result<T>>,
{
    type Reading = R;
}

/// A count of writes that a fill must not overtake. Its lock makes a fill's check and insert
/// one step, and a writer's bump and its own updates of the cache another.
#[derive(Default)]
struct Epoch(RwLock<u64>);

impl Epoch {
    fn now(&self) -> RwLockReadGuard<'_, u64> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the epoch; the cache is updated while the returned lock is held.
    fn bump(&self) -> RwLockWriteGuard<'_, u64> {
        let mut epoch = self.0.write().unwrap_or_else(PoisonError::into_inner);
        *epoch += 1;
        epoch
    }
}

/// The epoch a read started in: a fill made with it is kept only if the epoch has not moved.
struct FillGuard<'a> {
    epoch: &'a Epoch,
    seen: u64,
}

impl FillGuard<'_> {
    /// Runs `fill` if no write has bumped the epoch since the guard was taken, with writers
    /// held off until it is done.
    fn fill_if_unmoved(&self, fill: impl FnOnce()) {
        let now = self.epoch.now();
        if *now == self.seen {
            fill();
        }
    }
}

#[derive(PartialEq, Eq, Hash)]
struct ValueKey {
    site: SiteKey,
    account_id: Box<str>,
    key: Box<str>,
}

/// Looks a value up without building a [`ValueKey`]; hashes exactly as one.
#[derive(Hash)]
struct ValueLookup<'a> {
    site: SiteKey,
    account_id: &'a str,
    key: &'a str,
}

impl Equivalent<ValueKey> for ValueLookup<'_> {
    fn equivalent(&self, stored: &ValueKey) -> bool {
        stored.site == self.site
            && *stored.account_id == *self.account_id
            && *stored.key == *self.key
    }
}

#[derive(Clone)]
struct ValueWeight;

impl Weighter<ValueKey, Option<PropertyValue>> for ValueWeight {
    fn weight(&self, key: &ValueKey, value: &Option<PropertyValue>) -> u64 {
        let text = value.as_ref().map_or(0, |value| value.as_str().len());
        (key.account_id.len() + key.key.len() + text) as u64 + ENTRY_OVERHEAD
    }
}

#[derive(Clone)]
struct KeyListWeight;

impl Weighter<InSite, Arc<[String]>> for KeyListWeight {
    fn weight(&self, account: &InSite, keys: &Arc<[String]>) -> u64 {
        let text: usize = keys.iter().map(|key| key.len() + LISTED_KEY_OVERHEAD).sum();
        (account.text.len() + text) as u64 + ENTRY_OVERHEAD
    }
}

impl ReadCache {
    /// Room for `bytes` of values and a quarter as much of key lists, off for 0; `others_may_write`
    /// when other connections may write the same file. Time for trusting and idling comes from
    /// `clock`.
    pub(super) fn new(bytes: u64, others_may_write: bool, clock: SharedClock) -> Self {
        let on = bytes > 0;
        let accounts_held = if on { ACCOUNTS_HELD } else { 0 };
        let entries = usize::try_from(bytes / 256).unwrap_or(usize::MAX).max(16);
        let values = Cache::with_weighter(entries, bytes, ValueWeight);
        let key_lists = Cache::with_weighter(entries / 8 + 16, bytes / 4, KeyListWeight);
        Self {
            tokens: Cache::new(accounts_held),
            access: Cache::new(accounts_held),
            accounts: Cache::new(accounts_held),
            users: Cache::new(accounts_held),
            values,
            key_lists,
            accounts_epoch: Epoch::default(),
            stripes: std::array::from_fn(|_| Epoch::default()),
            hasher: DefaultHashBuilder::default(),
            on,
            others_may_write,
            started: clock.now(),
            clock,
            unchanged_at: AtomicU64::new(0),
            asked_at: AtomicU64::new(0),
            poll_wanted: Notify::new(),
        }
    }

    /// Whether the cache may answer now: never when off; always for an in-memory database; for
    /// a file, only while the last poll for changes by others is recent. Otherwise the writer is
    /// asked to poll.
    fn answers(&self) -> bool {
        if !self.on || !self.others_may_write {
            return self.on;
        }
        let now = self.elapsed_ms();
        // One store per 100 ms at most: every request passes here.
        if self.asked_at.load(Ordering::Relaxed) + 100 < now {
            self.asked_at.store(now, Ordering::Relaxed);
        }
        let trusted = self
            .last_seen_unchanged()
            .is_some_and(|at| now.saturating_sub(at) <= TRUSTED_FOR_MS);
        if !trusted {
            self.poll_wanted.notify_one();
        }
        trusted
    }

    /// Whether the writer should keep polling for changes by others: requests came lately.
    pub(super) fn polling(&self) -> bool {
        self.on
            && self.others_may_write
            && self
                .elapsed_ms()
                .saturating_sub(self.asked_at.load(Ordering::Relaxed))
                < IDLE_AFTER_MS
    }

    /// Waits until a request finds the cache untrusted after an idle spell.
    pub(super) async fn poll_requested(&self) {
        self.poll_wanted.notified().await;
    }

    /// Polls for changes by others if the last poll is older than [`POLL_EVERY_MS`].
    /// `PRAGMA data_version` on the writer's own connection changes only when another
    /// connection commits: another process, or a second store on the same file. Any change
    /// drops everything; `last` is what the previous poll saw: the number of writer connections
    /// made (`connections`, since each counts versions of its own) and the version. The first
    /// poll drops everything too: what was kept before it had no baseline to be checked by.
    pub(super) async fn poll_other_writers(
        &self,
        writer: &SqlitePool,
        connections: &AtomicU64,
        last: &mut Option<(u64, i64)>,
    ) {
        let at = self.elapsed_ms();
        if self
            .last_seen_unchanged()
            .is_some_and(|last| at.saturating_sub(last) < POLL_EVERY_MS)
        {
            return;
        }
        let seen = match writer.acquire().await {
            Ok(mut conn) => {
                let version = sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                    .fetch_one(&mut *conn)
                    .await;
                version.map(|version| (connections.load(Ordering::SeqCst), version))
            }
            Err(error) => Err(error),
        };
        match seen {
            Ok(seen) => {
                if *last != Some(seen) {
                    self.invalidate_all();
                }
                *last = Some(seen);
                self.seen_unchanged_at(at);
            }
            Err(error) => tracing::warn!(%error, "cannot poll for changes by other processes"),
        }
    }

    /// The file was seen unchanged by others at `at`, a time taken before the poll.
    fn seen_unchanged_at(&self, at: u64) {
        self.unchanged_at.fetch_max(at + 1, Ordering::SeqCst);
    }

    /// When the file was last seen unchanged by others; `None` before the first poll, which
    /// also takes the baseline that later changes are told by. Nothing is trusted before it:
    /// a value read earlier could hide a change that the baseline already includes.
    fn last_seen_unchanged(&self) -> Option<u64> {
        self.unchanged_at.load(Ordering::SeqCst).checked_sub(1)
    }

    /// Milliseconds since the cache was made, by its clock.
    fn elapsed_ms(&self) -> u64 {
        let elapsed = self.clock.now().saturating_duration_since(self.started);
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }

    /// Drops everything: users, tokens or the file changed in ways the writer did not see.
    pub(super) fn invalidate_all(&self) {
        let _accounts = self.accounts_epoch.bump();
        let _stripes: Vec<_> = self.stripes.iter().map(Epoch::bump).collect();
        self.tokens.clear();
        self.access.clear();
        self.accounts.clear();
        self.users.clear();
        self.values.clear();
        self.key_lists.clear();
    }

    /// The epoch a fill is checked against: the account's stripe, or the accounts epoch.
    fn guard(&self, account_id: Option<&str>) -> FillGuard<'_> {
        let epoch = match account_id {
            Some(account_id) => &self.stripes[self.stripe(account_id)],
            None => &self.accounts_epoch,
        };
        let seen = *epoch.now();
        FillGuard { epoch, seen }
    }

    fn stripe(&self, account_id: &str) -> usize {
        (self.hasher.hash_one(account_id) % STRIPES as u64) as usize
    }

    /// Moves an account's stripe; its cache entries are updated while the lock is held.
    fn bump_stripe(&self, account_id: &str) -> RwLockWriteGuard<'_, u64> {
        self.stripes[self.stripe(account_id)].bump()
    }

    /// The owner of a token, held or read by `read`. Unknown tokens are not kept: a token
    /// created elsewhere must work at once.
    pub(super) async fn token_owner(
        &self,
        site: SiteKey,
        digest: &TokenDigest,
        read: impl Read<Option<Arc<TokenOwner>>>,
    ) -> sqlx::Result<Option<Arc<TokenOwner>>> {
        let key = (site, *digest);
        self.through(&self.tokens, &key, None, || key, Option::is_some, read)
            .await
    }

    /// What an OAuth access token gives, held or read by `read`; unknown tokens are not kept.
    pub(super) async fn access(
        &self,
        site: SiteKey,
        digest: &TokenDigest,
        read: impl Read<Option<Arc<Access>>>,
    ) -> sqlx::Result<Option<Arc<Access>>> {
        let key = (site, *digest);
        self.through(&self.access, &key, None, || key, Option::is_some, read)
            .await
    }

    /// The account with this email key, held or read by `read`; unknown emails are not kept.
    pub(super) async fn account(
        &self,
        site: SiteKey,
        email_key: &str,
        read: impl Read<Option<Arc<Account>>>,
    ) -> sqlx::Result<Option<Arc<Account>>> {
        let lookup = InSiteLookup {
            site,
            text: email_key,
        };
        let key = || in_site(site, email_key);
        self.through(&self.accounts, &lookup, None, key, Option::is_some, read)
            .await
    }

    /// The user with this account id (or that there is none), held or read by `read`.
    pub(super) async fn user(
        &self,
        site: SiteKey,
        account_id: &str,
        read: impl Read<Option<User>>,
    ) -> sqlx::Result<Option<User>> {
        let lookup = InSiteLookup {
            site,
            text: account_id,
        };
        let key = || in_site(site, account_id);
        self.through(&self.users, &lookup, None, key, |_| true, read)
            .await
    }

    /// A property's value (or that there is none), held or read by `read`.
    pub(super) async fn value(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &str,
        read: impl Read<Option<PropertyValue>>,
    ) -> sqlx::Result<Option<PropertyValue>> {
        let lookup = ValueLookup {
            site,
            account_id,
            key,
        };
        let key = || value_key(site, account_id, key);
        self.through(&self.values, &lookup, Some(account_id), key, |_| true, read)
            .await
    }

    /// An account's property keys, held or read by `read`.
    pub(super) async fn key_list(
        &self,
        site: SiteKey,
        account_id: &str,
        read: impl Read<Arc<[String]>>,
    ) -> sqlx::Result<Arc<[String]>> {
        let lookup = InSiteLookup {
            site,
            text: account_id,
        };
        let key = || in_site(site, account_id);
        self.through(
            &self.key_lists,
            &lookup,
            Some(account_id),
            key,
            |_| true,
            read,
        )
        .await
    }

    /// The read-through every lookup is. When the cache may answer and holds `lookup`, that is
    /// the answer. Otherwise `read` gives it, and it is kept under `key` if `keep` says so and
    /// no write raced the read: the guard is taken before the read, and the answer inserted
    /// after only if the guard's epoch has not moved meanwhile. Values and key lists go by their
    /// account's stripe (`account_id`); tokens, accounts and users by the accounts epoch.
    async fn through<K, V, W, Q>(
        &self,
        cache: &Cache<K, V, W>,
        lookup: &Q,
        account_id: Option<&str>,
        key: impl FnOnce() -> K,
        keep: impl FnOnce(&V) -> bool,
        read: impl Read<V>,
    ) -> sqlx::Result<V>
    where
        K: Eq + Hash,
        V: Clone,
        W: Weighter<K, V> + Clone,
        Q: Hash + Equivalent<K> + ?Sized,
    {
        if !self.answers() {
            return read().await;
        }
        if let Some(held) = cache.get(lookup) {
            return Ok(held);
        }
        let guard = self.guard(account_id);
        let answer = read().await?;
        if keep(&answer) {
            let key = key();
            guard.fill_if_unmoved(|| cache.insert(key, answer.clone()));
        }
        Ok(answer)
    }

    /// After a committed PUT: the value is known, and a new key changes the account's list.
    pub(super) fn after_write(
        &self,
        site: SiteKey,
        account_id: &str,
        key: &str,
        value: PropertyValue,
        created: bool,
    ) {
        let _bumped = self.bump_stripe(account_id);
        self.values
            .insert(value_key(site, account_id, key), Some(value));
        if created {
            self.key_lists.remove(&InSiteLookup {
                site,
                text: account_id,
            });
        }
    }

    /// After a committed DELETE.
    pub(super) fn after_delete(&self, site: SiteKey, account_id: &str, key: &str, existed: bool) {
        let _bumped = self.bump_stripe(account_id);
        self.values.insert(value_key(site, account_id, key), None);
        if existed {
            self.key_lists.remove(&InSiteLookup {
                site,
                text: account_id,
            });
        }
    }
}

fn value_key(site: SiteKey, account_id: &str, key: &str) -> ValueKey {
    ValueKey {
        site,
        account_id: account_id.into(),
        key: key.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const S: SiteKey = SiteKey::DEFAULT;
    use crate::clock::{self, ManualClock};

    fn cache() -> ReadCache {
        ReadCache::new(1 << 20, false, clock::system())
    }

    fn stored(text: &str) -> PropertyValue {
        PropertyValue::from_stored(text.to_owned())
    }

    /// A read that fails, so that a lookup succeeds only when the cache holds the answer.
    async fn not_held<T>() -> sqlx::Result<T> {
        Err(sqlx::Error::RowNotFound)
    }

    #[tokio::test]
    async fn a_fill_that_raced_a_write_leaves_the_writes_value() {
        let cache = cache();
        let read = || async {
            // A write commits while the read is under way...
            cache.after_write(S, "alice", "k", stored("2"), false);
            Ok(Some(stored("1")))
        };
        // ...and the read, which saw the old value, must not put it in the write's place, not
        // even for a moment.
        let _ = cache.value(S, "alice", "k", read).await;
        let held = cache.value(S, "alice", "k", not_held).await.ok();
        assert_eq!(held, Some(Some(stored("2"))));
    }

    #[tokio::test]
    async fn a_fill_in_a_quiet_epoch_stays() {
        let cache = cache();
        let _ = cache
            .value(S, "alice", "k", || async { Ok(Some(stored("1"))) })
            .await;
        let held = cache.value(S, "alice", "k", not_held).await.ok();
        assert_eq!(held, Some(Some(stored("1"))));
    }

    #[tokio::test]
    async fn invalidating_all_spoils_every_read_under_way() {
        async fn invalidating<T>(cache: &ReadCache) -> sqlx::Result<Option<T>> {
            cache.invalidate_all();
            Ok(None)
        }
        let cache = cache();
        let _ = cache.value(S, "bob", "k", || invalidating(&cache)).await;
        let _ = cache.user(S, "bob", || invalidating(&cache)).await;
        assert!(cache.value(S, "bob", "k", not_held).await.is_err());
        assert!(cache.user(S, "bob", not_held).await.is_err());
    }

    #[tokio::test]
    async fn a_new_key_drops_the_account_list_and_an_update_keeps_it() {
        let cache = cache();
        let _ = cache
            .key_list(S, "alice", || async { Ok(["a".to_owned()].into()) })
            .await;
        cache.after_write(S, "alice", "a", stored("1"), false);
        assert!(cache.key_list(S, "alice", not_held).await.is_ok());
        cache.after_write(S, "alice", "b", stored("1"), true);
        assert!(cache.key_list(S, "alice", not_held).await.is_err());
    }

    #[tokio::test]
    async fn a_cache_given_no_room_keeps_nothing() {
        let cache = ReadCache::new(0, false, clock::system());
        let _ = cache
            .value(S, "alice", "k", || async { Ok(Some(stored("1"))) })
            .await;
        cache.after_write(S, "alice", "k", stored("2"), true);
        assert!(cache.value(S, "alice", "k", not_held).await.is_err());
    }

    #[test]
    fn small_values_are_weighed_with_their_bookkeeping_not_their_text_alone() {
        let cache = cache();
        for index in 0..10_000 {
            cache.after_write(S, "alice", &format!("k{index}"), stored("1"), false);
        }
        // Each such entry takes about 200 bytes of heap. Weighed at its text and a little more,
        // all 10,000 would fit in 1 MiB and take about twice that.
        let held = cache.values.len();
        assert!((1_000..=(1 << 20) / 128).contains(&held), "{held} held");
    }

    #[test]
    fn a_file_others_may_write_is_trusted_only_after_a_recent_poll() {
        let clock = ManualClock::new();
        let cache = ReadCache::new(1 << 20, true, clock.clone());
        assert!(!cache.answers(), "nothing is trusted before the first poll");
        clock.advance(Duration::from_millis(TRUSTED_FOR_MS + 5));
        assert!(!cache.answers());
        cache.seen_unchanged_at(cache.elapsed_ms());
        clock.advance(Duration::from_millis(TRUSTED_FOR_MS));
        assert!(cache.answers());
        clock.advance(Duration::from_millis(1));
        assert!(!cache.answers());
    }

    #[tokio::test]
    async fn a_poll_on_a_new_writer_connection_or_the_first_drops_everything() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("poll.db").display());
        let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
            .expect("a URL")
            .create_if_missing(true);
        let writer = SqlitePool::connect_with(options).await.expect("opens");
        let clock = ManualClock::new();
        let cache = ReadCache::new(1 << 20, true, clock.clone());
        let (connections, mut last) = (AtomicU64::new(1), None);
        let polled = |cache: &ReadCache| {
            cache.after_write(S, "alice", "k", stored("1"), false);
            clock.advance(Duration::from_millis(POLL_EVERY_MS));
            cache.values.len()
        };
        let held = polled(&cache);
        cache
            .poll_other_writers(&writer, &connections, &mut last)
            .await;
        assert_eq!((held, cache.values.len()), (1, 0), "the first poll");
        let held = polled(&cache);
        cache
            .poll_other_writers(&writer, &connections, &mut last)
            .await;
        assert_eq!((held, cache.values.len()), (1, 1), "nothing changed");
        // The writer's connection was made again: its versions are not the last one's.
        connections.fetch_add(1, Ordering::SeqCst);
        clock.advance(Duration::from_millis(POLL_EVERY_MS));
        cache
            .poll_other_writers(&writer, &connections, &mut last)
            .await;
        assert_eq!(cache.values.len(), 0, "a new connection");
    }
}
