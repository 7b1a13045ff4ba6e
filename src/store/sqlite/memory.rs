//! The SQLite store's memory of accounts, users, values and key lists: written through by the
//! writer, filled by reads, and dropped whenever another connection changes the file.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Equivalent, Weighter};
use tokio::sync::Notify;

use super::super::Account;
use crate::credentials::TokenDigest;
use crate::domain::{PropertyValue, User};

/// Epoch counters for values and key lists, chosen by account: a write to one account does not
/// spoil fills for the others.
const STRIPES: usize = 64;
/// A cached answer is given only if the file was last seen unchanged by others this recently.
pub(super) const TRUSTED_FOR_MS: u64 = 50;
/// How often the writer looks for changes by others while requests are coming in.
pub(super) const CHECK_EVERY_MS: u64 = 10;
/// After this long without requests the writer stops looking until the next request.
const IDLE_AFTER_MS: u64 = 1_000;
/// Users, accounts and tokens held, each.
const ACCOUNTS_HELD: usize = 10_000;
/// What an entry costs beside its text, for weighing values and key lists.
const ENTRY_OVERHEAD: u64 = 64;

/// What the store remembers. Every fill follows one rule, which keeps a slow read from putting
/// back a value that a write has already replaced: take a [`Ticket`] before reading the
/// database, insert after, and take the insert back if the ticket's epoch moved meanwhile.
/// Writers bump the epoch after they commit and before they update the memory.
pub(super) struct Memory {
    tokens: Cache<TokenDigest, Arc<User>>,
    accounts: Cache<Box<str>, Arc<Account>>,
    users: Cache<Box<str>, Option<User>>,
    values: Cache<ValueKey, Option<PropertyValue>, ValueWeight>,
    key_lists: Cache<Box<str>, Arc<[String]>, KeyListWeight>,
    /// Bumped whenever users or tokens may have changed.
    accounts_epoch: AtomicU64,
    stripes: [AtomicU64; STRIPES],
    hasher: DefaultHashBuilder,
    /// Whether other connections can write the file (not an in-memory database).
    shared: bool,
    started: Instant,
    /// When the file was last seen unchanged by others, in ms since `started`, plus one; 0 until
    /// the first look.
    verified_at: AtomicU64,
    used_at: AtomicU64,
    /// Wakes the writer to look for changes after an idle spell.
    pub(super) wake: Notify,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("values", &self.values.len())
            .field("key_lists", &self.key_lists.len())
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// The epoch a read started in.
#[derive(Clone, Copy)]
pub(super) struct Ticket {
    stripe: Option<usize>,
    epoch: u64,
}

#[derive(PartialEq, Eq, Hash)]
struct ValueKey {
    account_id: Box<str>,
    key: Box<str>,
}

/// Looks a value up without building a [`ValueKey`]; hashes exactly as one.
#[derive(Hash)]
struct ValueLookup<'a> {
    account_id: &'a str,
    key: &'a str,
}

impl Equivalent<ValueKey> for ValueLookup<'_> {
    fn equivalent(&self, stored: &ValueKey) -> bool {
        *stored.account_id == *self.account_id && *stored.key == *self.key
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

impl Weighter<Box<str>, Arc<[String]>> for KeyListWeight {
    fn weight(&self, account_id: &Box<str>, keys: &Arc<[String]>) -> u64 {
        let text: usize = keys.iter().map(|key| key.len() + 24).sum();
        (account_id.len() + text) as u64 + ENTRY_OVERHEAD
    }
}

impl Memory {
    /// Room for `bytes` of values and as many again of key lists; `shared` when other
    /// connections may write the same file.
    pub(super) fn new(bytes: u64, shared: bool) -> Self {
        let hasher = DefaultHashBuilder::default();
        let entries = usize::try_from(bytes / 256).unwrap_or(usize::MAX).max(16);
        Self {
            tokens: Cache::new(ACCOUNTS_HELD),
            accounts: Cache::new(ACCOUNTS_HELD),
            users: Cache::new(ACCOUNTS_HELD),
            values: Cache::with(
                entries,
                bytes,
                ValueWeight,
                hasher.clone(),
                Default::default(),
            ),
            key_lists: Cache::with(
                entries / 8 + 16,
                bytes / 4,
                KeyListWeight,
                hasher.clone(),
                Default::default(),
            ),
            accounts_epoch: AtomicU64::new(0),
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
            hasher,
            shared,
            started: Instant::now(),
            verified_at: AtomicU64::new(0),
            used_at: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    /// The memory, if it may answer now: always in memory; for a file, only while the last look
    /// for changes by other connections is recent. Otherwise the writer is asked to look.
    pub(super) fn usable(&self) -> Option<&Self> {
        if !self.shared {
            return Some(self);
        }
        let now = self.now_ms();
        // One store per 100 ms at most: every request passes here.
        if self.used_at.load(Ordering::Relaxed) + 100 < now {
            self.used_at.store(now, Ordering::Relaxed);
        }
        if self
            .last_verified()
            .is_some_and(|at| now.saturating_sub(at) <= TRUSTED_FOR_MS)
        {
            Some(self)
        } else {
            self.wake.notify_one();
            None
        }
    }

    /// Whether the writer should keep looking for changes by others.
    pub(super) fn watching(&self) -> bool {
        self.shared
            && self
                .now_ms()
                .saturating_sub(self.used_at.load(Ordering::Relaxed))
                < IDLE_AFTER_MS
    }

    /// Whether the last look for changes is older than the writer's period.
    pub(super) fn due_for_check(&self) -> bool {
        self.last_verified()
            .is_none_or(|at| self.now_ms().saturating_sub(at) >= CHECK_EVERY_MS)
    }

    /// A time stamp for [`Memory::verified`], taken before the look.
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The file was seen unchanged by others at `at`.
    pub(super) fn verified(&self, at: u64) {
        self.verified_at.fetch_max(at + 1, Ordering::SeqCst);
    }

    /// When the file was last seen unchanged by others; `None` before the first look, which
    /// also takes the baseline that later changes are told by. Nothing is trusted before it:
    /// a value read earlier could hide a change that the baseline already includes.
    fn last_verified(&self) -> Option<u64> {
        self.verified_at.load(Ordering::SeqCst).checked_sub(1)
    }

    /// Drops everything: users, tokens or the file changed in ways the writer did not see.
    pub(super) fn forget(&self) {
        self.accounts_epoch.fetch_add(1, Ordering::SeqCst);
        for stripe in &self.stripes {
            stripe.fetch_add(1, Ordering::SeqCst);
        }
        self.tokens.clear();
        self.accounts.clear();
        self.users.clear();
        self.values.clear();
        self.key_lists.clear();
    }

    pub(super) fn accounts_ticket(&self) -> Ticket {
        Ticket {
            stripe: None,
            epoch: self.accounts_epoch.load(Ordering::SeqCst),
        }
    }

    pub(super) fn account_ticket(&self, account_id: &str) -> Ticket {
        let stripe = self.stripe(account_id);
        Ticket {
            stripe: Some(stripe),
            epoch: self.stripes[stripe].load(Ordering::SeqCst),
        }
    }

    fn still_current(&self, ticket: Ticket) -> bool {
        let epoch = match ticket.stripe {
            Some(stripe) => &self.stripes[stripe],
            None => &self.accounts_epoch,
        };
        epoch.load(Ordering::SeqCst) == ticket.epoch
    }

    fn stripe(&self, account_id: &str) -> usize {
        (self.hasher.hash_one(account_id) % STRIPES as u64) as usize
    }

    fn bump(&self, account_id: &str) {
        self.stripes[self.stripe(account_id)].fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn token_owner(&self, digest: &TokenDigest) -> Option<Arc<User>> {
        self.tokens.get(digest)
    }

    pub(super) fn fill_token_owner(&self, ticket: Ticket, digest: TokenDigest, user: Arc<User>) {
        self.tokens.insert(digest, user);
        if !self.still_current(ticket) {
            self.tokens.remove(&digest);
        }
    }

    pub(super) fn account(&self, email_key: &str) -> Option<Arc<Account>> {
        self.accounts.get(email_key)
    }

    pub(super) fn fill_account(&self, ticket: Ticket, email_key: &str, account: Arc<Account>) {
        self.accounts.insert(email_key.into(), account);
        if !self.still_current(ticket) {
            self.accounts.remove(email_key);
        }
    }

    pub(super) fn user(&self, account_id: &str) -> Option<Option<User>> {
        self.users.get(account_id)
    }

    pub(super) fn fill_user(&self, ticket: Ticket, account_id: &str, user: Option<User>) {
        self.users.insert(account_id.into(), user);
        if !self.still_current(ticket) {
            self.users.remove(account_id);
        }
    }

    pub(super) fn value(&self, account_id: &str, key: &str) -> Option<Option<PropertyValue>> {
        self.values.get(&ValueLookup { account_id, key })
    }

    pub(super) fn fill_value(
        &self,
        ticket: Ticket,
        account_id: &str,
        key: &str,
        value: Option<PropertyValue>,
    ) {
        self.values.insert(value_key(account_id, key), value);
        if !self.still_current(ticket) {
            self.values.remove(&ValueLookup { account_id, key });
        }
    }

    pub(super) fn key_list(&self, account_id: &str) -> Option<Arc<[String]>> {
        self.key_lists.get(account_id)
    }

    pub(super) fn fill_key_list(&self, ticket: Ticket, account_id: &str, keys: Arc<[String]>) {
        self.key_lists.insert(account_id.into(), keys);
        if !self.still_current(ticket) {
            self.key_lists.remove(account_id);
        }
    }

    /// A committed PUT: the value is known, and a new key changes the account's list.
    pub(super) fn wrote(&self, account_id: &str, key: &str, value: PropertyValue, created: bool) {
        self.bump(account_id);
        self.values.insert(value_key(account_id, key), Some(value));
        if created {
            self.key_lists.remove(account_id);
        }
    }

    /// A committed DELETE.
    pub(super) fn deleted(&self, account_id: &str, key: &str, existed: bool) {
        self.bump(account_id);
        self.values.insert(value_key(account_id, key), None);
        if existed {
            self.key_lists.remove(account_id);
        }
    }
}

fn value_key(account_id: &str, key: &str) -> ValueKey {
    ValueKey {
        account_id: account_id.into(),
        key: key.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Option<PropertyValue> {
        Some(PropertyValue::from_stored(text.to_owned()))
    }

    #[test]
    fn a_fill_that_raced_a_write_is_taken_back() {
        let memory = Memory::new(1 << 20, false);
        let ticket = memory.account_ticket("alice");
        // A write commits while the read is under way...
        memory.wrote(
            "alice",
            "k",
            PropertyValue::from_stored("2".to_owned()),
            false,
        );
        // ...and the read, which saw the old value, must not put it back.
        memory.fill_value(ticket, "alice", "k", value("1"));
        assert_eq!(memory.value("alice", "k"), None);
    }

    #[test]
    fn a_fill_in_a_quiet_epoch_stays() {
        let memory = Memory::new(1 << 20, false);
        let ticket = memory.account_ticket("alice");
        memory.fill_value(ticket, "alice", "k", value("1"));
        assert_eq!(memory.value("alice", "k"), Some(value("1")));
    }

    #[test]
    fn forgetting_spoils_every_ticket_taken_before() {
        let memory = Memory::new(1 << 20, false);
        let accounts = memory.accounts_ticket();
        let values = memory.account_ticket("bob");
        memory.forget();
        memory.fill_user(accounts, "bob", None);
        memory.fill_value(values, "bob", "k", value("1"));
        assert_eq!(memory.user("bob"), None);
        assert_eq!(memory.value("bob", "k"), None);
    }

    #[test]
    fn a_new_key_drops_the_account_list_and_an_update_keeps_it() {
        let memory = Memory::new(1 << 20, false);
        let keys: Arc<[String]> = vec!["a".to_owned()].into();
        memory.fill_key_list(memory.account_ticket("alice"), "alice", keys);
        memory.wrote(
            "alice",
            "a",
            PropertyValue::from_stored("1".to_owned()),
            false,
        );
        assert!(memory.key_list("alice").is_some());
        memory.wrote(
            "alice",
            "b",
            PropertyValue::from_stored("1".to_owned()),
            true,
        );
        assert!(memory.key_list("alice").is_none());
    }

    #[test]
    fn a_file_others_may_write_is_trusted_only_after_a_recent_look() {
        let memory = Memory::new(1 << 20, true);
        assert!(
            memory.usable().is_none(),
            "nothing is trusted before the first look"
        );
        memory.verified(memory.now_ms());
        assert!(memory.usable().is_some());
        std::thread::sleep(std::time::Duration::from_millis(TRUSTED_FOR_MS + 5));
        assert!(memory.usable().is_none());
        memory.verified(memory.now_ms());
        assert!(memory.usable().is_some());
    }
}
