//! The user-properties operations in Jira's order of checks: authorize, then validate, then
//! store; and the one permission rule they share. Past 350 lines only with its tests.

use std::future::Future;
use std::sync::Arc;

use crate::domain::{
    AccountId, Caller, KeyError, NamedAccount, Operation, PropertyKey, PropertyValue, User, Written,
};
use crate::error::{Error, Result};
use crate::service::Authenticator;
use crate::store::Store;

/// The operations of Jira's user-properties API, independent of HTTP.
#[derive(Debug, Clone)]
pub struct PropertyService {
    store: Store,
    /// Proves a caller again when the store finds their cached credentials overtaken.
    authenticator: Authenticator,
}

/// Runs one attempt of an operation as the caller. When the store finds the caller's cached
/// credentials overtaken by a change (made through any instance), the caller is proved again
/// against the stored credentials and the attempt runs once more, from its first check, so the
/// permission rule is always applied to credentials as new as the attempt's statement. A
/// renewed caller is never stale (`Authenticator::renew`). A macro, not a function taking a
/// closure: the attempt borrows the caller it is given.
macro_rules! as_current {
    ($service:expr, $caller:expr, |$current:ident| $attempt:expr) => {{
        let $current: &Caller = $caller;
        match $attempt.await {
            Err(error) if error.is_stale() => {
                let renewed = $service.authenticator.renew($caller).await?;
                let $current: &Caller = &renewed;
                $attempt.await
            }
            outcome => outcome,
        }
    }};
}

/// The gateway's rule, checked before any of Jira's: an OAuth 2.0 token must hold one of the
/// scopes the operation accepts. API tokens carry no scopes and pass.
pub fn require_scope(caller: &Caller, operation: Operation) -> Result<()> {
    match &caller.scopes {
        Some(scopes) if !operation.allowed_by(scopes) => Err(Error::ScopeMismatch),
        _ => Ok(()),
    }
}

/// Jira's rule: anyone may act on their own record; *Administer Jira* may act on anyone's.
/// Everyone else is refused, whether or not the target exists, so existence does not leak.
pub fn authorize(caller: &Caller, target: &NamedAccount) -> Result<()> {
    if caller.is_admin() || caller.account_id() == target.as_str() {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

impl PropertyService {
    /// A service over `store`; `authenticator` renews callers whose credentials went stale.
    pub fn new(store: Store, authenticator: Authenticator) -> Self {
        Self {
            store,
            authenticator,
        }
    }

    /// The target's property keys, sorted by code point.
    pub async fn property_keys(
        &self,
        caller: &Caller,
        target: &NamedAccount,
    ) -> Result<Arc<[String]>> {
        as_current!(self, caller, |current| self.keys_once(current, target))
    }

    async fn keys_once(&self, caller: &Caller, target: &NamedAccount) -> Result<Arc<[String]>> {
        let account_id = self
            .check_target(caller, target, Operation::ReadProperties)
            .await?;
        let version = caller.credentials_version;
        Ok(self
            .store
            .property_keys(caller.site, account_id, version)
            .await?)
    }

    /// One property's value, exactly as stored.
    pub async fn property(
        &self,
        caller: &Caller,
        target: &NamedAccount,
        key: Result<PropertyKey, KeyError>,
    ) -> Result<(PropertyKey, PropertyValue)> {
        let value = as_current!(self, caller, |current| {
            self.value_once(current, target, key.as_ref())
        })?;
        let key = key?;
        match value {
            Some(value) => Ok((key, value)),
            None => Err(Error::PropertyNotFound(key.as_str().to_owned())),
        }
    }

    async fn value_once(
        &self,
        caller: &Caller,
        target: &NamedAccount,
        key: Result<&PropertyKey, &KeyError>,
    ) -> Result<Option<PropertyValue>> {
        let account_id = self
            .check_target(caller, target, Operation::ReadProperties)
            .await?;
        let key = key.map_err(|error| *error)?;
        let version = caller.credentials_version;
        Ok(self
            .store
            .property(caller.site, account_id, key, version)
            .await?)
    }

    /// Creates or replaces a property. The value is awaited only after the caller, the target and
    /// the key have passed, so those failures answer first and nothing is read needlessly; its
    /// own failures (the body, read by the caller's layer) come back as they are.
    pub async fn set_property<E: From<Error>>(
        &self,
        caller: &Caller,
        target: &NamedAccount,
        key: Result<PropertyKey, KeyError>,
        value: impl Future<Output = Result<PropertyValue, E>>,
    ) -> Result<Written, E> {
        let account_id = as_current!(self, caller, |current| {
            self.check_target(current, target, Operation::WriteProperty)
        })?;
        let key = key.map_err(Error::from)?;
        let value = value.await?;
        // The value is read once; a caller renewed after a stale attempt is checked again.
        let mut checked = Some(account_id);
        Ok(as_current!(self, caller, |current| {
            self.write_once(current, target, checked.take(), &key, &value)
        })?)
    }

    async fn write_once(
        &self,
        caller: &Caller,
        target: &NamedAccount,
        checked: Option<&str>,
        key: &PropertyKey,
        value: &PropertyValue,
    ) -> Result<Written> {
        let account_id = match checked {
            Some(account_id) => account_id,
            None => {
                self.check_target(caller, target, Operation::WriteProperty)
                    .await?
            }
        };
        let version = caller.credentials_version;
        let written = self
            .store
            .set_property(caller.site, account_id, key, value, version)
            .await?;
        written.ok_or_else(|| Error::UserNotFound(account_id.to_owned()))
    }

    /// Deletes a property.
    pub async fn delete_property(
        &self,
        caller: &Caller,
        target: &NamedAccount,
        key: Result<PropertyKey, KeyError>,
    ) -> Result<()> {
        as_current!(self, caller, |current| {
            self.delete_once(current, target, key.as_ref())
        })
    }

    async fn delete_once(
        &self,
        caller: &Caller,
        target: &NamedAccount,
        key: Result<&PropertyKey, &KeyError>,
    ) -> Result<()> {
        let account_id = self
            .check_target(caller, target, Operation::DeleteProperty)
            .await?;
        let key = key.map_err(|error| *error)?;
        let version = caller.credentials_version;
        if self
            .store
            .delete_property(caller.site, account_id, key, version)
            .await?
        {
            Ok(())
        } else {
            Err(Error::PropertyNotFound(key.as_str().to_owned()))
        }
    }

    /// The caller's own record, as `GET /myself` shows it.
    pub async fn myself(&self, caller: &Caller) -> Result<Arc<User>> {
        require_scope(caller, Operation::ReadUsers)?;
        let caller = self.authenticator.confirmed(caller).await?;
        Ok(caller.user)
    }

    /// A user's record, as `GET /user` shows it: anyone signed in may look anyone up.
    pub async fn user(&self, caller: &Caller, target: &NamedAccount) -> Result<User> {
        require_scope(caller, Operation::ReadUsers)?;
        let caller = &self.authenticator.confirmed(caller).await?;
        if caller.account_id() == target.as_str() {
            return Ok(User::clone(&caller.user));
        }
        let user = match target {
            NamedAccount::Id(id) => self.store.user(caller.site, id.as_str()).await?,
            NamedAccount::Nobody(_) => None,
        };
        user.ok_or(Error::UserNotVisible)
    }

    /// Active users whose display name has a word starting with `query`, or whose email starts
    /// with it (case aside), or whose account id is `account_id`; by display name, from
    /// `start_at`, at most `max_results`. Anyone signed in may search, as on Jira Cloud.
    pub async fn search_users(
        &self,
        caller: &Caller,
        query: Option<&str>,
        account_id: Option<&str>,
        start_at: usize,
        max_results: usize,
    ) -> Result<Vec<User>> {
        require_scope(caller, Operation::ReadUsers)?;
        let caller = &self.authenticator.confirmed(caller).await?;
        let query = query
            .map(str::to_lowercase)
            .filter(|query| !query.is_empty());
        let matches = |user: &User| {
            let by_id = account_id.is_some_and(|id| id == user.account_id);
            let by_text = query.as_deref().is_some_and(|query| {
                user.email.to_lowercase().starts_with(query)
                    || user
                        .display_name
                        .to_lowercase()
                        .split_whitespace()
                        .any(|word| word.starts_with(query))
            });
            user.active && (by_id || by_text)
        };
        let mut found: Vec<User> = self
            .store
            .users(caller.site, usize::MAX, true)
            .await?
            .into_iter()
            .filter(matches)
            .collect();
        found.sort_by(|a, b| {
            a.display_name
                .cmp(&b.display_name)
                .then(a.account_id.cmp(&b.account_id))
        });
        Ok(found.into_iter().skip(start_at).take(max_results).collect())
    }

    /// The users with these account ids, in the order asked, each once; a page of them and
    /// how many there are in all.
    pub async fn users_by_id(
        &self,
        caller: &Caller,
        account_ids: &[String],
        start_at: usize,
        max_results: usize,
    ) -> Result<(Vec<User>, usize)> {
        require_scope(caller, Operation::ReadUsers)?;
        let caller = &self.authenticator.confirmed(caller).await?;
        let mut asked = std::collections::HashSet::with_capacity(account_ids.len());
        // Text that is no account id names no user (PostgreSQL could not even compare NUL).
        let ids: Vec<&str> = account_ids
            .iter()
            .map(String::as_str)
            .filter(|id| AccountId::is_valid(id) && asked.insert(*id))
            .collect();
        let found = self.store.users_named(caller.site, &ids).await?;
        let total = found.len();
        Ok((
            found.into_iter().skip(start_at).take(max_results).collect(),
            total,
        ))
    }

    /// Permission first (403), then existence (404); the account id to act on. The caller's own
    /// record exists: they just authenticated with it.
    async fn check_target<'a>(
        &self,
        caller: &Caller,
        target: &'a NamedAccount,
        operation: Operation,
    ) -> Result<&'a str> {
        require_scope(caller, operation)?;
        if let Err(refused) = authorize(caller, target) {
            // A refusal decided on cached credentials is confirmed first: a permission granted
            // through another instance holds here at once.
            self.store.confirm(caller.credentials_version).await?;
            return Err(refused);
        }
        if caller.account_id() == target.as_str() {
            return Ok(target.as_str());
        }
        match target {
            NamedAccount::Id(id)
                if self
                    .store
                    .user_exists(caller.site, id.as_str(), caller.credentials_version)
                    .await? =>
            {
                Ok(id.as_str())
            }
            _ => Err(Error::UserNotFound(target.as_str().to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SiteKey;

    fn caller(account_id: &str, admin: bool) -> Caller {
        Caller {
            site: SiteKey::DEFAULT,
            scopes: None,
            proof: None,
            credentials_version: None,
            user: Arc::new(User {
                account_id: account_id.to_owned(),
                email: format!("{account_id}@example.com"),
                display_name: account_id.to_owned(),
                admin,
                active: true,
            }),
        }
    }

    fn target(account_id: &str) -> NamedAccount {
        NamedAccount::new(account_id.to_owned())
    }

    #[test]
    fn a_user_may_act_on_their_own_record() {
        assert!(authorize(&caller("alice", false), &target("alice")).is_ok());
    }

    #[test]
    fn a_user_may_not_act_on_another_record() {
        assert!(matches!(
            authorize(&caller("alice", false), &target("bob")),
            Err(Error::Forbidden)
        ));
    }

    #[test]
    fn an_administrator_may_act_on_any_record() {
        assert!(authorize(&caller("root", true), &target("bob")).is_ok());
        assert!(authorize(&caller("root", true), &target("nobody")).is_ok());
        assert!(authorize(&caller("root", true), &target(&"x".repeat(200))).is_ok());
    }

    #[test]
    fn a_user_may_not_act_on_text_that_names_nobody() {
        assert!(matches!(
            authorize(&caller("alice", false), &target(&"x".repeat(200))),
            Err(Error::Forbidden)
        ));
    }

    #[test]
    fn account_ids_compare_exactly() {
        assert!(authorize(&caller("alice", false), &target("Alice")).is_err());
    }
}
