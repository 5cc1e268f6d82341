//! One function per command. Each prints human text, or exactly one JSON object with `--json`.

use std::io::BufRead as _;

use anyhow::{Context as _, bail};
use chrono::TimeDelta;
use passport::{ClientKind, GrantType, NewClient, Passport, PurgeFilter, StoreError, write_key_files};
use serde_json::json;

use crate::app::{Context, pages, router_with};
use crate::cli::{
    Cli, ClientAction, ClientCommand, Command, CreateClient, KeyArgs, KeysAction, PurgeArgs, TokenCommand, UserCommand,
};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context::from_cli(&cli)?;
    match cli.command {
        Command::Install(args) => install(&ctx, &args).await,
        Command::Keys(cmd) => match cmd.action {
            None => keys(&ctx, &cmd.files),
            Some(action) => key_action(&ctx, action).await,
        },
        Command::Migrate(args) => migrate(&ctx, &args).await,
        Command::Client(cmd) => client(&ctx, cmd).await,
        Command::User(cmd) => user(&ctx, cmd).await,
        Command::Token(cmd) => token(&ctx, cmd).await,
        Command::Purge(args) => purge(&ctx, &args).await,
        Command::Hash(flag) => hash(&ctx, flag.json).await,
        Command::Serve(args) => serve(&ctx, &args.bind).await,
    }
}

/// `passport migrate [--dry-run]`. In Laravel compatibility mode only the sets it uses (no
/// `passport_users`: users are Laravel's), and only this command migrates.
async fn migrate(ctx: &Context, args: &crate::cli::MigrateArgs) -> anyhow::Result<()> {
    ctx.check()?;
    let db = ctx.database().await?;
    let result = async {
        ctx.check_database(&db)?;
        if args.dry_run {
            let steps = db.migration_plan(ctx.schemas()).await?;
            if args.json {
                let steps: Vec<_> = steps.iter().map(|s| json!({"step": s.label, "sql": s.sql})).collect();
                println!("{}", json!({"dry_run": true, "pending": steps}));
            } else if steps.is_empty() {
                println!("Nothing to migrate.");
            } else {
                for step in &steps {
                    println!("-- {}\n{};\n", step.label, step.sql.trim_end_matches(';'));
                }
                println!("{} step(s) would be applied; nothing was changed.", steps.len());
            }
            return Ok(());
        }
        let applied = db.migrate_schemas(ctx.schemas()).await?;
        print(
            args.json,
            json!({"applied": applied}),
            &format!("Applied {applied} migration(s)."),
        );
        Ok(())
    }
    .await;
    db.close().await;
    result
}

fn print(json: bool, value: serde_json::Value, human: &str) {
    if json {
        println!("{value}");
    } else {
        println!("{human}");
    }
}

fn keys(ctx: &Context, args: &KeyArgs) -> anyhow::Result<()> {
    // A broken compatibility setting stops here, not read as "off".
    ctx.config.laravel_compat()?;
    ctx.check_compat_algorithm(args.algorithm)?;
    // Once the database holds the key set, the files only seed a new database (README).
    let (private, public) = write_key_files(ctx.key_dir(), args.algorithm, args.length, args.force)?;
    print(
        args.json,
        json!({"private_key": private, "public_key": public}),
        "Encryption keys generated successfully.",
    );
    Ok(())
}

/// `passport keys rotate | retire | list`: the key set kept in the database.
async fn key_action(ctx: &Context, action: KeysAction) -> anyhow::Result<()> {
    let (db, passport) = open(ctx).await?;
    let info_json = |k: &passport::KeyInfo| {
        json!({
            "kid": k.kid,
            "algorithm": k.algorithm,
            "state": k.state.as_str(),
            "created_at": k.created_at,
            "activates_at": k.activates_at,
            "retired_at": k.retired_at,
        })
    };
    let result = async {
        match action {
            KeysAction::Rotate {
                algorithm,
                length,
                publish_ahead,
                json,
            } => {
                let ahead = match publish_ahead.as_ref().or(ctx.config.key_publish_ahead.as_ref()) {
                    Some(text) if text.trim() == "0" || text.trim() == "0s" => TimeDelta::zero(),
                    Some(text) => {
                        passport::parse_duration(text).map_err(|e| anyhow::anyhow!("--publish-ahead: {e}"))?
                    }
                    None => TimeDelta::seconds(passport::JWKS_MAX_AGE as i64),
                };
                if ctx.compat().is_some() {
                    bail!(
                        "compat = \"laravel\": Passport's TokenGuard reads one RSA public key file, so keys are not rotated \
                         here; make new ones with `php artisan passport:keys` and restart both"
                    );
                }
                let info = passport.rotate_key(algorithm, length, ahead).await.map_err(one_line)?;
                print(
                    json,
                    info_json(&info),
                    &format!(
                        "New {} key {} published; it signs from {}.",
                        info.algorithm, info.kid, info.activates_at
                    ),
                );
            }
            KeysAction::Retire { kid, json } => match passport.retire_key(&kid).await.map_err(one_line)? {
                Some(info) => print(json, info_json(&info), &format!("Key {kid} retired.")),
                None => bail!("no live key {kid}"),
            },
            KeysAction::List(flag) => {
                let infos = passport.key_infos().await?;
                if flag.json {
                    println!("{}", serde_json::Value::Array(infos.iter().map(info_json).collect()));
                } else {
                    for k in &infos {
                        println!(
                            "{}  {:<6}  {:<9}  activates {}",
                            k.kid,
                            k.algorithm,
                            k.state.as_str(),
                            k.activates_at
                        );
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}

/// An OAuth error as a one-line CLI reason.
fn one_line(err: passport::OAuthError) -> anyhow::Error {
    anyhow::anyhow!(err.hint().unwrap_or(err.description()).to_owned())
}

/// Generates keys unless they exist (or come from the environment).
fn ensure_keys(ctx: &Context, algorithm: passport::Algorithm, length: u32, force: bool) -> anyhow::Result<()> {
    if ctx.keys_from_config() {
        return Ok(());
    }
    let exists = ctx.key_dir().join(passport::PRIVATE_KEY_FILE).exists();
    if force || !exists {
        write_key_files(ctx.key_dir(), algorithm, length, force)?;
    }
    Ok(())
}

/// Key files are needed when neither the configuration nor the database holds keys.
async fn generate_missing_keys(ctx: &Context, db: &passport_sqlx::Database) -> anyhow::Result<()> {
    if !ctx.keys_from_config()
        && !ctx.key_dir().join(passport::PRIVATE_KEY_FILE).exists()
        && db.store().list_keys().await?.is_empty()
    {
        if ctx.compat().is_some() {
            bail!(
                "compat = \"laravel\": no key: point --data-dir at the Laravel storage directory (oauth-private.key) \
                 or set PASSPORT_PRIVATE_KEY; keys are never created in compatibility mode"
            );
        }
        tracing::info!("no keys found: generating a 4096-bit RSA key pair");
        ensure_keys(ctx, passport::Algorithm::RS256, 4096, false)?;
    }
    Ok(())
}

async fn open(ctx: &Context) -> anyhow::Result<(passport_sqlx::Database, Passport)> {
    ctx.check()?;
    let db = ctx.migrated_database().await?;
    generate_missing_keys(ctx, &db).await?;
    let passport = ctx.passport(&db).await?;
    Ok((db, passport))
}

/// The default provider's personal access client, created when missing.
async fn ensure_personal_access_client(passport: &Passport) -> anyhow::Result<passport::Client> {
    Ok(match passport.personal_access_client(None).await? {
        Some(client) => client,
        None => {
            let new = NewClient::new("Personal Access Client", ClientKind::PersonalAccess);
            passport.create_client(new).await?.0
        }
    })
}

async fn install(ctx: &Context, args: &KeyArgs) -> anyhow::Result<()> {
    ctx.check()?;
    if ctx.compat().is_some() {
        bail!(
            "compat = \"laravel\": the Laravel application's keys and clients are used as they are; run `passport migrate`"
        );
    }
    let db = ctx.migrated_database().await?;
    ensure_keys(ctx, args.algorithm, args.length, args.force)?;
    let passport = ctx.passport(&db).await?;
    let client = ensure_personal_access_client(&passport).await?;
    db.close().await;
    print(
        args.json,
        json!({"personal_access_client": {"client_id": client.id}}),
        &format!("Passport installed.\nPersonal access client ID ... {}", client.id),
    );
    Ok(())
}

fn client_kind(args: &CreateClient) -> ClientKind {
    let k = &args.kind;
    if k.client {
        ClientKind::ClientCredentials
    } else if k.password {
        ClientKind::Password
    } else if k.implicit {
        ClientKind::Implicit
    } else if k.device {
        ClientKind::Device
    } else if k.personal {
        ClientKind::PersonalAccess
    } else {
        ClientKind::AuthorizationCode {
            device_flow: args.with_device_flow,
        }
    }
}

fn default_name(kind: ClientKind) -> &'static str {
    match kind {
        ClientKind::AuthorizationCode { .. } => "Authorization Code Client",
        ClientKind::Password => "Password Grant Client",
        ClientKind::ClientCredentials => "Client Credentials Grant Client",
        ClientKind::Implicit => "Implicit Grant Client",
        ClientKind::Device => "Device Authorization Grant Client",
        ClientKind::PersonalAccess => "Personal Access Client",
    }
}

fn grant_names(grants: &[GrantType]) -> Vec<&'static str> {
    grants.iter().map(|g| g.as_str()).collect()
}

async fn client(ctx: &Context, cmd: ClientCommand) -> anyhow::Result<()> {
    let (db, passport) = open(ctx).await?;
    let result = match cmd.action {
        Some(ClientAction::List(flag)) => list_clients(&passport, flag.json).await,
        Some(ClientAction::Revoke { id, json }) => {
            if passport.revoke_client(&id).await?.clients.is_empty() {
                bail!("no active client with id {id}");
            }
            print(json, json!({"revoked": id}), &format!("Client {id} revoked."));
            Ok(())
        }
        Some(ClientAction::RegistrationToken { expires_in, json }) => {
            registration_token(&passport, &expires_in, json).await
        }
        None => create_client(&passport, cmd.create).await.map_err(|err| match ctx.compat() {
            // A Passport 11/12 table has integer ids and NOT NULL columns of its own.
            Some(_) => anyhow::anyhow!(
                "cannot add a client to the Laravel clients table ({err}); on Passport 11/12 create it with `php artisan passport:client`"
            ),
            None => err,
        }),
    };
    db.close().await;
    result
}

/// `passport client registration-token`: an initial access token, shown once.
async fn registration_token(passport: &Passport, expires_in: &str, json: bool) -> anyhow::Result<()> {
    let ttl = passport::parse_duration(expires_in).map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?;
    let (token, expires_at) = passport.issue_initial_access_token(ttl).await?;
    let human = format!(
        "Initial access token (valid until {expires_at}, shown once):\n{token}\nSend it as `Authorization: Bearer …` to POST /{}/register.",
        passport.settings().path
    );
    print(
        json,
        json!({"initial_access_token": token, "expires_at": expires_at}),
        &human,
    );
    Ok(())
}

async fn create_client(passport: &Passport, args: CreateClient) -> anyhow::Result<()> {
    let kind = client_kind(&args);
    if args.public && matches!(kind, ClientKind::ClientCredentials | ClientKind::PersonalAccess) {
        bail!("client credentials and personal access clients cannot be public");
    }
    if args.provider.is_some() && !matches!(kind, ClientKind::Password | ClientKind::PersonalAccess) {
        bail!(
            "--provider applies to password and personal access clients only (the sign-in pages serve the default provider)"
        );
    }
    let list = |arg: &Option<String>| -> Vec<String> {
        arg.as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let name = args.name.clone().unwrap_or_else(|| default_name(kind).to_owned());
    let jwks = match &args.jwks_file {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?),
        None => None,
    };
    let new = NewClient::new(name, kind)
        .redirect_uris(list(&args.redirect_uri))
        .post_logout_redirect_uris(list(&args.post_logout_redirect_uri))
        .public(args.public)
        .provider(args.provider.clone())
        .skips_authorization(args.skips_authorization)
        .can_introspect(args.can_introspect)
        .require_pushed_authorization_requests(args.require_pushed_authorization_requests)
        .dpop_bound_access_tokens(args.dpop_bound_access_tokens)
        .jwks(jwks)
        .jwks_uri(args.jwks_uri.clone())
        .fapi_profile(args.fapi);
    let (client, secret) = passport
        .create_client(new)
        .await
        .map_err(|e| anyhow::anyhow!(e.hint().unwrap_or(e.description()).to_owned()))?;
    let secret = secret.as_ref().map(|s| s.expose_secret().to_owned());
    let mut human = format!("New client created successfully.\nClient ID ...... {}", client.id);
    if let Some(secret) = &secret {
        human.push_str(&format!(
            "\nClient Secret .. {secret}\nThe client secret will not be shown again, so don't lose it!"
        ));
    }
    print(
        args.json,
        json!({
            "client_id": client.id,
            "client_secret": secret,
            "grant_types": grant_names(&client.grant_types),
            "redirect_uris": client.redirect_uris,
            "post_logout_redirect_uris": client.post_logout_redirect_uris,
            "token_endpoint_auth_method": client.token_endpoint_auth_method(),
            "can_introspect": client.can_introspect,
            "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
            "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
            "fapi_profile": client.fapi_profile,
        }),
        &human,
    );
    Ok(())
}

async fn list_clients(passport: &Passport, json: bool) -> anyhow::Result<()> {
    let clients = passport.list_clients().await?;
    if json {
        let list: Vec<_> = clients
            .iter()
            .map(|c| {
                json!({
                    "client_id": c.id,
                    "name": c.name,
                    "confidential": c.is_confidential(),
                    "grant_types": grant_names(&c.grant_types),
                    "redirect_uris": c.redirect_uris,
                    "post_logout_redirect_uris": c.post_logout_redirect_uris,
                    "token_endpoint_auth_method": c.token_endpoint_auth_method(),
                    "can_introspect": c.can_introspect,
                    "require_pushed_authorization_requests": c.require_pushed_authorization_requests,
                    "dpop_bound_access_tokens": c.dpop_bound_access_tokens,
                    "provider": c.provider,
                    "revoked": c.revoked,
                    "created_at": c.created_at,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for c in &clients {
            println!(
                "{}  {:<32}  {}{}",
                c.id,
                c.name,
                grant_names(&c.grant_types).join(","),
                if c.revoked { "  (revoked)" } else { "" }
            );
        }
    }
    Ok(())
}

async fn user(ctx: &Context, cmd: UserCommand) -> anyhow::Result<()> {
    let (db, passport) = open(ctx).await?;
    let users = db.users();
    let result = async {
        match cmd {
            UserCommand::Create {
                email,
                password,
                name,
                email_verified,
                json,
            } => {
                let email = email.trim().to_lowercase();
                if !email.contains('@') || passport::check_name(&email).is_err() {
                    bail!("invalid email address {email:?}");
                }
                let password = match password {
                    Some(p) => p,
                    None => {
                        let mut line = String::new();
                        std::io::stdin().lock().read_line(&mut line)?;
                        line.trim_end_matches(['\r', '\n']).to_owned()
                    }
                };
                if password.len() < 8 {
                    bail!("the password must be at least 8 characters");
                }
                let name = match name {
                    Some(name) => passport::check_name(&name)
                        .map_err(|e| anyhow::anyhow!("--name: {e}"))?
                        .to_owned(),
                    None => email.split('@').next().unwrap_or_default().to_owned(),
                };
                let hash = passport.hasher().hash(&password).await?;
                let id = match users.create_user(&name, &email, &hash, passport.now()).await {
                    Ok(id) => id,
                    Err(StoreError::Conflict) => bail!("a user with email {email} already exists"),
                    Err(e) => return Err(e.into()),
                };
                if email_verified {
                    users
                        .set_email_verified(&id, Some(passport.now()), passport.now())
                        .await?;
                }
                print(json, json!({"user_id": id}), &format!("User {id} created."));
            }
            UserCommand::List(flag) => {
                let list = users.list_users().await?;
                if flag.json {
                    println!("{}", serde_json::to_string(&list)?);
                } else {
                    for u in &list {
                        println!("{}  {}  {}", u.id, u.email, u.name);
                    }
                }
            }
            UserCommand::Delete { id, json } => {
                if passport.delete_user(None, &id).await?.is_none() {
                    bail!("no user with id {id}");
                }
                print(
                    json,
                    json!({"deleted": id}),
                    &format!("User {id} deleted; their tokens are revoked."),
                );
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}

async fn token(ctx: &Context, cmd: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Personal {
        user,
        name,
        scopes,
        json,
    } = cmd;
    let (db, passport) = open(ctx).await?;
    let result = async {
        if db.users().find_user_by_id(&user).await?.is_none() {
            bail!("no user with id {user}");
        }
        let scopes: Vec<String> = scopes
            .as_deref()
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let issued = passport
            .create_token(&user, None, &name, &scopes)
            .await
            .map_err(|e| anyhow::anyhow!(e.hint().unwrap_or(e.description()).to_owned()))?;
        print(
            json,
            json!({
                "access_token": issued.access_token,
                "token_id": issued.token.id,
                "expires_at": issued.token.expires_at,
            }),
            &format!("Personal access token (shown once):\n{}", issued.access_token),
        );
        Ok(())
    }
    .await;
    db.close().await;
    result
}

async fn purge(ctx: &Context, args: &PurgeArgs) -> anyhow::Result<()> {
    let (db, passport) = open(ctx).await?;
    let both = args.revoked == args.expired;
    let revoked = both || args.revoked;
    let expired = both || args.expired;
    let cutoff = passport.now() - TimeDelta::hours(i64::from(args.hours));
    let counts = passport
        .purge(PurgeFilter {
            revoked,
            expired_before: expired.then_some(cutoff),
            now: passport.now(),
        })
        .await;
    db.close().await;
    let counts = counts?;
    let human = match (revoked, expired) {
        (true, true) => format!(
            "Purged revoked items and items expired for more than {} hours.",
            args.hours
        ),
        (true, false) => "Purged revoked items.".to_owned(),
        _ => format!("Purged items expired for more than {} hours.", args.hours),
    };
    print(args.json, json!({"purged": counts}), &human);
    Ok(())
}

async fn hash(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let (db, passport) = open(ctx).await?;
    let result = async {
        let hashed = passport.hash_plaintext_secrets().await?;
        print(
            json,
            json!({"hashed": hashed}),
            &format!("Hashed {hashed} client secret(s)."),
        );
        anyhow::Ok(())
    }
    .await;
    db.close().await;
    result
}

async fn serve(ctx: &Context, bind: &str) -> anyhow::Result<()> {
    ctx.check()?;
    let options = serve_options(&ctx.config)?;
    let db = ctx.migrated_database().await?;
    generate_missing_keys(ctx, &db).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener.local_addr()?;
    // Absolute URLs (verification_uri, later the discovery document) come from the issuer only,
    // never from a request's Host header.
    let (issuer, derived) = match &ctx.config.issuer {
        Some(issuer) => (issuer.clone(), false),
        None if address.ip().is_unspecified() => bail!(
            "--bind {bind} listens on every address, so the server's public URL is unknown: set issuer (PASSPORT_ISSUER)"
        ),
        None => (format!("http://{address}"), true),
    };
    let passport = ctx.passport_with(&db, |b| b.issuer(issuer.clone())).await?;
    if derived {
        tracing::info!(%issuer, "no issuer configured: using the bind address");
    }
    if ctx.config.server_secret.is_none() && db.kind() != "sqlite" {
        // SQLite lives in the data directory beside the keys; a server database may be read by
        // more people (backups, replicas) than the key files are.
        tracing::warn!(
            "the server secret is kept in the database: anyone who can read it can sign SPA cookies; \
             set PASSPORT_SERVER_SECRET to keep it elsewhere"
        );
    }
    // The dashboard issues personal access tokens: make sure there is a client for them (in
    // Laravel compatibility mode, only if the application has one: we add no clients there).
    if ctx.compat().is_none() {
        ensure_personal_access_client(&passport).await?;
    }
    let app = router_with(pages(&passport, &db, &ctx.data_dir)?);
    let metrics_listener = match &ctx.config.metrics_bind {
        Some(metrics_bind) => Some(
            tokio::net::TcpListener::bind(metrics_bind)
                .await
                .with_context(|| format!("metrics_bind: cannot listen on {metrics_bind}"))?,
        ),
        None => None,
    };
    tracing::info!(%address, database = db.kind(), "passport listening");
    // Printed for scripts that start the server on port 0.
    println!("listening on http://{address}");
    // The metrics, on their own listener: never on the public port.
    let metrics = match metrics_listener {
        Some(listener) => {
            let metrics_address = listener.local_addr()?;
            passport.metrics().collector(|| db.pool_metrics());
            tracing::info!(address = %metrics_address, "metrics listening");
            println!("metrics on http://{metrics_address}/metrics");
            let router = passport_axum::metrics_router(&passport);
            Some(tokio::spawn(
                passport_axum::serve(listener, router)
                    .options(options.clone())
                    .into_future(),
            ))
        }
        None => None,
    };
    let purging = tokio::spawn(purge_in_background(passport.clone(), purge_interval(&ctx.config)?));
    // Rotations and retirements made elsewhere (the CLI, another instance) reach this one.
    let watching = tokio::spawn(passport.clone().watch_keys(KEY_RELOAD_INTERVAL));
    // Revocations made elsewhere leave this instance's token cache within a second.
    let feed = tokio::spawn(passport.clone().watch_revocations());
    let served = passport_axum::serve(listener, app)
        .options(options)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    purging.abort();
    watching.abort();
    feed.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    served.context("server failed")?;
    tracing::info!("shutting down");
    db.close().await;
    tracing::info!("database closed");
    Ok(())
}

/// How often `serve` reloads the key set from the database.
const KEY_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The connection limits of `passport.toml` (defaults: `ServeOptions::default()`).
fn serve_options(config: &passport::PassportConfig) -> anyhow::Result<passport_axum::ServeOptions> {
    let mut options = passport_axum::ServeOptions::default();
    if let Some(n) = config.max_connections {
        options.max_connections = n;
    }
    if let Some(n) = config.max_connections_per_address {
        options.max_connections_per_address = n;
    }
    let duration = |key: &str, text: &str| {
        passport::parse_duration(text)
            .ok()
            .and_then(|d| d.to_std().ok())
            .ok_or_else(|| anyhow::anyhow!("{key}: invalid duration {text:?}"))
    };
    if let Some(text) = &config.header_read_timeout {
        options.header_read_timeout = duration("header_read_timeout", text)?;
    }
    if let Some(text) = &config.request_timeout {
        options.request_timeout = duration("request_timeout", text)?;
    }
    options.trusted_proxies =
        passport_axum::parse_trusted_proxies(&config.trusted_proxies).map_err(anyhow::Error::msg)?;
    Ok(options)
}

/// `purge_interval` (default one hour; `off` or `0` for none). In Laravel compatibility mode
/// the default is off: the rows are the application's, and it may schedule `passport:purge`
/// itself.
fn purge_interval(config: &passport::PassportConfig) -> anyhow::Result<Option<std::time::Duration>> {
    match config.purge_interval.as_deref().map(str::trim) {
        None if config.compat.is_some() && !matches!(config.laravel_compat(), Ok(None)) => Ok(None),
        None => Ok(Some(std::time::Duration::from_secs(3600))),
        Some("off" | "0" | "false" | "none") => Ok(None),
        Some(text) => passport::parse_duration(text)
            .ok()
            .and_then(|d| d.to_std().ok())
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("purge_interval: invalid duration {text:?} (or \"off\")")),
    }
}

/// How long expired rows are kept by the background purge (as `passport purge`'s `--hours`).
const PURGE_KEEP_EXPIRED: TimeDelta = TimeDelta::days(7);

/// Every `interval`: what `passport purge --expired` removes (rows expired for more than seven
/// days), plus expired sessions and consent requests, in the store's bounded batches, so no
/// cron job is needed. Revoked rows that have not expired stay: a replayed refresh token is
/// still recognized, and its family revoked. Every instance may run it; batches re-check
/// their rows, so two at once only share the work. Without an interval, expired sessions
/// are still purged every ten minutes.
async fn purge_in_background(passport: Passport, interval: Option<std::time::Duration>) {
    let mut every = tokio::time::interval(interval.unwrap_or(std::time::Duration::from_secs(600)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let now = passport.now();
        let filter = PurgeFilter {
            revoked: false,
            expired_before: interval.map(|_| now - PURGE_KEEP_EXPIRED),
            now,
        };
        match passport.purge(filter).await {
            Ok(counts) => tracing::info!(
                access_tokens = counts.access_tokens,
                refresh_tokens = counts.refresh_tokens,
                auth_codes = counts.auth_codes,
                device_codes = counts.device_codes,
                sessions = counts.sessions,
                "background purge done"
            ),
            Err(err) => tracing::warn!(error = %err, "background purge failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
