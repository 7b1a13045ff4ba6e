//! The subcommands and their arguments, beside the server's options in `Config`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::credentials::Secret;

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply the database migrations, then exit.
    Migrate,
    /// Add or list users.
    Users {
        /// What to do with users.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Create API tokens.
    Tokens {
        /// What to do with tokens.
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Register, list or delete apps: OAuth 2.0 apps and service accounts.
    Apps {
        /// What to do with apps.
        #[command(subcommand)]
        command: AppsCommand,
    },
    /// Write the whole state (users, token digests, properties) to FILE in the snapshot format;
    /// `-` writes to standard output.
    Export {
        /// Where to write.
        file: PathBuf,
    },
    /// Replace the whole state with the snapshot in FILE, atomically; `-` reads standard input.
    Import {
        /// Where to read.
        file: PathBuf,
    },
    /// Probe a running server's /healthz: exit 0 when it answers 200, 1 otherwise.
    Healthcheck {
        /// The server's base URL; default: http:// and the --listen address.
        #[arg(long, env = "JIRA_USERPROPS_HEALTHCHECK_URL")]
        url: Option<String>,
    },
}

/// `users` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum UsersCommand {
    /// Add a user, with a new API token that is printed once.
    Add {
        /// The account id.
        #[arg(long, env = "JIRA_USERPROPS_USER_ACCOUNT_ID")]
        account_id: String,
        /// The email, for Basic authentication.
        #[arg(long, env = "JIRA_USERPROPS_USER_EMAIL")]
        email: String,
        /// The display name; default: the email.
        #[arg(long, env = "JIRA_USERPROPS_USER_DISPLAY_NAME")]
        display_name: Option<String>,
        /// Grant *Administer Jira*.
        #[arg(long, env = "JIRA_USERPROPS_USER_ADMIN")]
        admin: bool,
    },
    /// List every user as JSON.
    List,
}

/// `tokens` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum TokensCommand {
    /// Create an API token for a user; the token is printed once.
    Create {
        /// The user's account id.
        #[arg(long, env = "JIRA_USERPROPS_USER_ACCOUNT_ID")]
        account_id: String,
        /// A scope, repeatable: the token becomes a scoped token, which works through
        /// `/ex/jira/{cloudId}` only, within its scopes.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// When the token stops working, in RFC 3339 (`2027-12-31T00:00:00Z`).
        #[arg(long)]
        expires_at: Option<String>,
    },
}

/// `apps` subcommands; apps are server-wide, so `--site` does not apply.
#[derive(Debug, Clone, Subcommand)]
pub enum AppsCommand {
    /// Register an app; its client secret is printed once.
    Create {
        /// The app's name.
        #[arg(long)]
        name: String,
        /// `oauth2` (the authorization-code flow) or `serviceAccount` (client credentials).
        #[arg(long, default_value = "oauth2", value_parser = ["oauth2", "serviceAccount"])]
        kind: String,
        /// The one redirect URI an OAuth 2.0 app may use.
        #[arg(long)]
        callback_url: Option<String>,
        /// A scope the app may ask for, repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Grant at once when `/authorize` names the user with `login_hint`.
        #[arg(long)]
        auto_consent: bool,
        /// Pin the client id instead of making one.
        #[arg(long)]
        client_id: Option<String>,
        /// Pin the client secret instead of making one.
        #[arg(long)]
        client_secret: Option<Secret>,
        /// A site a service account is a user of, repeatable.
        #[arg(long = "in-site")]
        sites: Vec<String>,
        /// The service account holds *Administer Jira*.
        #[arg(long)]
        admin: bool,
    },
    /// List every app as JSON, one per line, without secrets.
    List,
    /// Delete an app with every grant and token it holds.
    Delete {
        /// The app's client id.
        #[arg(long)]
        client_id: String,
    },
}
