//! What the admin API and seeds do to a SQLite store: users, tokens, snapshots and sites, each in
//! one `BEGIN IMMEDIATE` transaction on the writer, after which the read cache is dropped.

use super::{Sql, SqliteStore};
use crate::credentials::TokenDigest;
use crate::domain::{CloudId, PropertyValue, Site, SiteKey, SiteName, User};
use crate::store::admin::{CreatedSite, PatchOutcome, Snapshot, TokenInfo, TokenLimits, UserPatch};
use crate::store::sql::connection;
use crate::store::{Result, SeedData, SeedReport};

impl SqliteStore {
    pub(in crate::store) async fn apply_seed(
        &self,
        site: SiteKey,
        seed: &SeedData,
    ) -> Result<SeedReport> {
        self.change(Sql::apply_seed(self.begin_immediate().await?, site, seed))
            .await
    }

    pub(in crate::store) async fn users(
        &self,
        site: SiteKey,
        most: usize,
        active_only: bool,
    ) -> Result<Vec<User>> {
        let reader = &mut *connection(&self.reader).await?;
        Ok(Sql::users(reader, site, most, active_only).await?)
    }

    pub(in crate::store) async fn update_user(
        &self,
        site: SiteKey,
        account_id: &str,
        patch: &UserPatch,
    ) -> Result<PatchOutcome> {
        self.change(Sql::update_user(
            &mut *connection(&self.writer).await?,
            site,
            account_id,
            patch,
        ))
        .await
    }

    pub(in crate::store) async fn delete_user(
        &self,
        site: SiteKey,
        account_id: &str,
    ) -> Result<bool> {
        self.change(Sql::delete_user(
            &mut *connection(&self.writer).await?,
            site,
            account_id,
        ))
        .await
    }

    pub(in crate::store) async fn add_token(
        &self,
        site: SiteKey,
        account_id: &str,
        digest: &TokenDigest,
        limits: &TokenLimits,
    ) -> Result<Option<String>> {
        self.change(Sql::add_token(
            &mut *connection(&self.writer).await?,
            site,
            account_id,
            digest,
            limits,
        ))
        .await
    }

    pub(in crate::store) async fn properties(
        &self,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Option<Vec<(String, PropertyValue)>>> {
        Ok(Sql::properties(&mut *connection(&self.reader).await?, site, account_id).await?)
    }

    pub(in crate::store) async fn tokens(
        &self,
        site: SiteKey,
        account_id: &str,
    ) -> Result<Option<Vec<TokenInfo>>> {
        Ok(Sql::tokens(&mut *connection(&self.reader).await?, site, account_id).await?)
    }

    pub(in crate::store) async fn revoke_token(
        &self,
        site: SiteKey,
        account_id: &str,
        id: &str,
    ) -> Result<bool> {
        self.change(Sql::revoke_token(
            &mut *connection(&self.writer).await?,
            site,
            account_id,
            id,
        ))
        .await
    }

    pub(in crate::store) async fn reset(&self, site: SiteKey, everything: bool) -> Result<()> {
        self.change(Sql::reset(self.begin_immediate().await?, site, everything))
            .await
    }

    /// Read in one read transaction on a reader: WAL gives it one view of the file for its
    /// three reads, while writes go on beside it.
    pub(in crate::store) async fn snapshot(&self, site: SiteKey) -> Result<Snapshot> {
        Ok(Sql::snapshot(self.reader.begin().await?, site).await?)
    }

    pub(in crate::store) async fn restore(&self, site: SiteKey, snapshot: &Snapshot) -> Result<()> {
        self.change(Sql::restore(self.begin_immediate().await?, site, snapshot))
            .await
    }

    pub(in crate::store) async fn create_site(
        &self,
        id: CloudId,
        name: &SiteName,
        seed: &SeedData,
        kept: &str,
        most: u64,
    ) -> Result<CreatedSite> {
        let tx = self.begin_immediate().await?;
        self.change(Sql::create_site(tx, id, name, seed, kept, most))
            .await
    }

    pub(in crate::store) async fn delete_site(&self, site: SiteKey) -> Result<bool> {
        self.change(Sql::delete_site(
            &mut *connection(&self.writer).await?,
            site,
        ))
        .await
    }

    pub(in crate::store) async fn site_seed(&self, site: SiteKey) -> Result<Option<String>> {
        Ok(Sql::site_seed(&mut *connection(&self.reader).await?, site).await?)
    }

    pub(in crate::store) async fn sites(&self) -> Result<Vec<Site>> {
        Ok(Sql::sites(&mut *connection(&self.reader).await?).await?)
    }

    pub(in crate::store) async fn site_named(&self, name: &str) -> Result<Option<Site>> {
        Ok(Sql::site_named(&mut *connection(&self.reader).await?, name).await?)
    }

    pub(in crate::store) async fn site_with_id(&self, id: CloudId) -> Result<Option<Site>> {
        Ok(Sql::site_with_id(&mut *connection(&self.reader).await?, id).await?)
    }
}
