//! The command line: global options and one subcommand per task (README: For operators).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Passport: an OAuth2 authorization server.
#[derive(Debug, Parser)]
#[command(name = "passport", version, about)]
pub struct Cli {
    /// Database URL: sqlite://FILE, postgres://… or mysql://… (default: sqlite in the data directory).
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub database: Option<String>,
    /// Directory for the database, keys and passport.toml.
    #[arg(long, global = true, env = "PASSPORT_DATA_DIR", default_value = "passport-data")]
    pub data_dir: PathBuf,
    /// Configuration file (default: passport.toml in the data directory, if present).
    #[arg(long, global = true, env = "PASSPORT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate, generate keys if missing, and create a personal access client.
    Install(KeyArgs),
    /// Generate the key pair files, or rotate, retire and list the keys kept in the database.
    Keys(KeysCommand),
    /// Apply pending database migrations (`--dry-run`: print them and change nothing).
    Migrate(MigrateArgs),
    /// Create a client (default: authorization code), or list / revoke clients.
    Client(ClientCommand),
    /// Manage the standalone server's users.
    #[command(subcommand)]
    User(UserCommand),
    /// Issue tokens from the command line.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Delete revoked and/or long-expired tokens and codes.
    Purge(PurgeArgs),
    /// Hash client secrets still stored in plain text.
    Hash(JsonFlag),
    /// Run the server.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Print what would be applied, SQL included, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct KeysCommand {
    #[command(subcommand)]
    pub action: Option<KeysAction>,
    #[command(flatten)]
    pub files: KeyArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Make a new key: published in the JWKS at once, signing after --publish-ahead.
    Rotate {
        /// Signing algorithm: rs256, es256 or eddsa.
        #[arg(long, default_value = "rs256")]
        algorithm: passport::Algorithm,
        /// RSA modulus length in bits.
        #[arg(long, default_value_t = 4096)]
        length: u32,
        /// How long the new key is only published before it signs (default: the JWKS
        /// max-age, or key_publish_ahead).
        #[arg(long)]
        publish_ahead: Option<String>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Retire a key: it leaves the JWKS and its tokens are refused.
    Retire {
        /// The key id.
        kid: String,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List the keys with their state (published, current, verifying, retired).
    List(JsonFlag),
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Overwrite existing keys.
    #[arg(long)]
    pub force: bool,
    /// Signing algorithm: rs256 (Passport's), es256 or eddsa.
    #[arg(long, default_value = "rs256")]
    pub algorithm: passport::Algorithm,
    /// RSA modulus length in bits (2048, 3072, 4096 or 8192).
    #[arg(long, default_value_t = 4096)]
    pub length: u32,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ClientCommand {
    #[command(subcommand)]
    pub action: Option<ClientAction>,
    #[command(flatten)]
    pub create: CreateClient,
}

#[derive(Debug, Subcommand)]
pub enum ClientAction {
    /// List clients.
    List(JsonFlag),
    /// Revoke a client (its tokens stop working at once).
    Revoke {
        /// The client id.
        id: String,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Issue an initial access token for dynamic client registration
    /// (`client_registration = "token"`, RFC 7591 §3).
    RegistrationToken {
        /// How long it may be used, e.g. 1h, 7d.
        #[arg(long, default_value = "1d")]
        expires_in: String,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
#[group(id = "kind", multiple = false)]
pub struct ClientKindFlags {
    /// A client credentials client.
    #[arg(long)]
    pub client: bool,
    /// A password grant client.
    #[arg(long)]
    pub password: bool,
    /// An implicit grant client.
    #[arg(long)]
    pub implicit: bool,
    /// A device authorization grant client.
    #[arg(long)]
    pub device: bool,
    /// A personal access client.
    #[arg(long)]
    pub personal: bool,
}

#[derive(Debug, Args)]
pub struct CreateClient {
    #[command(flatten)]
    pub kind: ClientKindFlags,
    /// The client's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Redirect URIs, comma-separated.
    #[arg(long = "redirect-uri", alias = "redirect_uri")]
    pub redirect_uri: Option<String>,
    /// The user provider the client serves.
    #[arg(long)]
    pub provider: Option<String>,
    /// Make a public client (no secret).
    #[arg(long)]
    pub public: bool,
    /// Also enable the device flow for an authorization code client.
    #[arg(long)]
    pub with_device_flow: bool,
    /// A trusted first-party client: users are not asked for consent (Passport's
    /// `skipsAuthorization`).
    #[arg(long)]
    pub skips_authorization: bool,
    /// Where OpenID Connect logout may return to, comma-separated (`post_logout_redirect_uris`).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uri: Option<String>,
    /// A resource server: may introspect tokens issued to other clients (`can_introspect`).
    #[arg(long)]
    pub can_introspect: bool,
    /// Authorization requests must be pushed first (RFC 9126 §6).
    #[arg(long)]
    pub require_pushed_authorization_requests: bool,
    /// Access tokens must be DPoP-bound (RFC 9449 §5.2).
    #[arg(long)]
    pub dpop_bound_access_tokens: bool,
    /// Authenticate with private_key_jwt (RFC 7523 §2.2) signed by a key of this JWK Set file
    /// (public keys only) instead of a secret.
    #[arg(long, value_name = "FILE")]
    pub jwks_file: Option<std::path::PathBuf>,
    /// Authenticate with private_key_jwt signed by a key of the JWK Set published at this
    /// https URL (fetched within limits, cached five minutes).
    #[arg(long, value_name = "URL", conflicts_with = "jwks_file")]
    pub jwks_uri: Option<String>,
    /// Apply the FAPI 2.0 Security Profile (an authorization code client with --jwks-file).
    #[arg(long)]
    pub fapi: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (the password is read from stdin when --password is not given).
    Create {
        /// Email, the login name.
        #[arg(long)]
        email: String,
        /// Password.
        #[arg(long)]
        password: Option<String>,
        /// Display name (default: the part of the email before @).
        #[arg(long)]
        name: Option<String>,
        /// Record the email address as verified (OpenID Connect `email_verified`).
        #[arg(long)]
        email_verified: bool,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List(JsonFlag),
    /// Delete a user and revoke their tokens.
    Delete {
        /// The user id.
        id: String,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a personal access token for a user.
    Personal {
        /// The user id.
        #[arg(long)]
        user: String,
        /// A name for the token.
        #[arg(long)]
        name: String,
        /// Scopes, comma-separated (default: the default scopes).
        #[arg(long)]
        scopes: Option<String>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Only revoked rows.
    #[arg(long)]
    pub revoked: bool,
    /// Only rows expired for more than --hours.
    #[arg(long)]
    pub expired: bool,
    /// How long expired rows are kept.
    #[arg(long, default_value_t = 168, value_parser = clap::value_parser!(u32).range(0..=876_000))]
    pub hours: u32,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PASSPORT_BIND", default_value = "127.0.0.1:8000")]
    pub bind: String,
}
