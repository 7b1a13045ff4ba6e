//! The user-properties service: authenticate, authorize, then validate and store, in Jira's order.

use std::future::Future;
use std::sync::Arc;

use crate::credentials::{Credentials, TokenDigest};
use crate::domain::{
    AccountId, Caller, KeyError, PropertyKey, PropertyValue, User, Written, email_key,
    is_valid_account_id,
};
use crate::error::{Error, Result};
use crate::store::Store;

/// The operations of Jira's user-properties API, independent of HTTP.
#[derive(Debug, Clone)]
pub struct PropertyService {
    store: Store,
}

/// Jira's rule: anyone may act on their own record; *Administer Jira* may act on anyone's.
/// Everyone else is refused, whether or not the target exists, so existence does not leak.
pub fn authorize(caller: &Caller, target: &AccountId) -> Result<()> {
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

    /// Who is calling. Credentials of an unknown token, a mismatched email or a deactivated user
    /// are all rejected alike.
    pub async fn authenticate(&self, credentials: Option<&Credentials>) -> Result<Caller> {
        let credentials = credentials.ok_or(Error::Unauthenticated {
            credentials_rejected: false,
        })?;
        let user = match credentials {
            // No account has an email with control characters (PostgreSQL cannot even store NUL).
            Credentials::Basic { email, .. } if email.chars().any(char::is_control) => None,
            Credentials::Basic { email, token } => {
                let digest = TokenDigest::of(token);
                let account = self.store.account_by_email(&email_key(email)).await?;
                // Every digest is compared, without stopping at a match, in constant time each.
                account
                    .filter(|account| {
                        account
                            .digests
                            .iter()
                            .fold(false, |found, stored| found | stored.matches(&digest))
                    })
                    .map(|account| account.user.clone())
            }
            Credentials::Bearer(token) => self.store.token_owner(&TokenDigest::of(token)).await?,
        };
        let user = user
            .filter(|user| user.active)
            .ok_or(Error::Unauthenticated {
                credentials_rejected: true,
            })?;
        Ok(Caller { user })
    }

    /// The target's property keys, sorted by code point.
    pub async fn property_keys(
        &self,
        caller: &Caller,
        target: &AccountId,
    ) -> Result<Arc<[String]>> {
        self.check_target(caller, target).await?;
        Ok(self.store.property_keys(target.as_str()).await?)
    }

    /// One property's value, exactly as stored.
    pub async fn property(
        &self,
        caller: &Caller,
        target: &AccountId,
        key: Result<PropertyKey, KeyError>,
    ) -> Result<(PropertyKey, PropertyValue)> {
        self.check_target(caller, target).await?;
        let key = key?;
        match self.store.property(target.as_str(), &key).await? {
            Some(value) => Ok((key, value)),
            None => Err(Error::PropertyNotFound(key.as_str().to_owned())),
        }
    }

    /// Creates or replaces a property. The value is awaited only after the caller, the target and
    /// the key have passed, so those failures answer first and nothing is read needlessly.
    pub async fn set_property(
        &self,
        caller: &Caller,
        target: &AccountId,
        key: Result<PropertyKey, KeyError>,
        value: impl Future<Output = Result<PropertyValue>>,
    ) -> Result<Written> {
        self.check_target(caller, target).await?;
        let key = key?;
        let value = value.await?;
        self.store
            .set_property(target.as_str(), &key, &value)
            .await?
            .ok_or_else(|| Error::UserNotFound(target.as_str().to_owned()))
    }

    /// Deletes a property.
    pub async fn delete_property(
        &self,
        caller: &Caller,
        target: &AccountId,
        key: Result<PropertyKey, KeyError>,
    ) -> Result<()> {
        self.check_target(caller, target).await?;
        let key = key?;
        if self.store.delete_property(target.as_str(), &key).await? {
            Ok(())
        } else {
            Err(Error::PropertyNotFound(key.as_str().to_owned()))
        }
    }

    /// A user's record, as `GET /user` shows it: anyone signed in may look anyone up.
    pub async fn user(&self, caller: &Caller, target: &AccountId) -> Result<User> {
        if caller.account_id() == target.as_str() {
            return Ok(User::clone(&caller.user));
        }
        let id = target.as_str();
        let user = if is_valid_account_id(id) {
            self.store.user(id).await?
        } else {
            None
        };
        user.ok_or(Error::UserNotVisible)
    }

    /// Permission first (403), then existence (404). The caller's own record exists: they just
    /// authenticated with it.
    async fn check_target(&self, caller: &Caller, target: &AccountId) -> Result<()> {
        authorize(caller, target)?;
        if caller.account_id() == target.as_str() {
            return Ok(());
        }
        let id = target.as_str();
        if is_valid_account_id(id) && self.store.user_exists(id).await? {
            Ok(())
        } else {
            Err(Error::UserNotFound(id.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(account_id: &str, admin: bool) -> Caller {
        Caller {
            user: Arc::new(User {
                account_id: account_id.to_owned(),
                email: format!("{account_id}@example.com"),
                display_name: account_id.to_owned(),
                admin,
                active: true,
            }),
        }
    }

    fn target(account_id: &str) -> AccountId {
        AccountId::new(account_id.to_owned()).unwrap()
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
    }

    #[test]
    fn account_ids_compare_exactly() {
        assert!(authorize(&caller("alice", false), &target("Alice")).is_err());
    }
}
