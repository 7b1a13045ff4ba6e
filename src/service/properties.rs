//! The user-properties operations in Jira's order of checks: authorize, then validate, then
//! store; and the one permission rule they share.

use std::future::Future;
use std::sync::Arc;

use crate::domain::{
    Caller, KeyError, NamedAccount, Operation, PropertyKey, PropertyValue, User, Written,
};
use crate::error::{Error, Result};
use crate::store::Store;

/// The operations of Jira's user-properties API, independent of HTTP.
#[derive(Debug, Clone)]
pub struct PropertyService {
    store: Store,
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
    /// A service over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The target's property keys, sorted by code point.
    pub async fn property_keys(
        &self,
        caller: &Caller,
        target: &NamedAccount,
    ) -> Result<Arc<[String]>> {
        let account_id = self
            .check_target(caller, target, Operation::ReadProperties)
            .await?;
        Ok(self.store.property_keys(caller.site, account_id).await?)
    }

    /// One property's value, exactly as stored.
    pub async fn property(
        &self,
        caller: &Caller,
        target: &NamedAccount,
        key: Result<PropertyKey, KeyError>,
    ) -> Result<(PropertyKey, PropertyValue)> {
        let account_id = self
            .check_target(caller, target, Operation::ReadProperties)
            .await?;
        let key = key?;
        match self.store.property(caller.site, account_id, &key).await? {
            Some(value) => Ok((key, value)),
            None => Err(Error::PropertyNotFound(key.as_str().to_owned())),
        }
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
        let account_id = self
            .check_target(caller, target, Operation::WriteProperty)
            .await?;
        let key = key.map_err(Error::from)?;
        let value = value.await?;
        let written = self
            .store
            .set_property(caller.site, account_id, &key, &value)
            .await
            .map_err(Error::from)?;
        Ok(written.ok_or_else(|| Error::UserNotFound(account_id.to_owned()))?)
    }

    /// Deletes a property.
    pub async fn delete_property(
        &self,
        caller: &Caller,
        target: &NamedAccount,
        key: Result<PropertyKey, KeyError>,
    ) -> Result<()> {
        let account_id = self
            .check_target(caller, target, Operation::DeleteProperty)
            .await?;
        let key = key?;
        if self
            .store
            .delete_property(caller.site, account_id, &key)
            .await?
        {
            Ok(())
        } else {
            Err(Error::PropertyNotFound(key.as_str().to_owned()))
        }
    }

    /// The caller's own record, as `GET /myself` shows it.
    pub fn myself(&self, caller: &Caller) -> Result<Arc<User>> {
        require_scope(caller, Operation::ReadUsers)?;
        Ok(caller.user.clone())
    }

    /// A user's record, as `GET /user` shows it: anyone signed in may look anyone up.
    pub async fn user(&self, caller: &Caller, target: &NamedAccount) -> Result<User> {
        require_scope(caller, Operation::ReadUsers)?;
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
            .users(caller.site)
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
        let mut found: Vec<User> = Vec::new();
        for id in account_ids {
            if found.iter().any(|user| user.account_id == *id) {
                continue;
            }
            if let Some(user) = self.store.user(caller.site, id).await? {
                found.push(user);
            }
        }
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
        authorize(caller, target)?;
        if caller.account_id() == target.as_str() {
            return Ok(target.as_str());
        }
        match target {
            NamedAccount::Id(id) if self.store.user_exists(caller.site, id.as_str()).await? => {
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
