//! Multi-row `INSERT`s for group commit ([`passport::TokenStore::insert_token_batch`]): one
//! statement for a batch's access tokens and one for its refresh tokens, written once for every
//! dialect (the query builder numbers the placeholders its way).

use chrono::{DateTime, Utc};
use passport::{AccessTokenRecord, RefreshTokenRecord};
use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::rows::to_json;

/// The `INSERT` of every access token in `rows`.
pub(crate) fn access_tokens<'a, DB>(rows: &'a [(AccessTokenRecord, Option<RefreshTokenRecord>)]) -> QueryBuilder<'a, DB>
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    DateTime<Utc>: Encode<'a, DB> + Type<DB>,
{
    let mut query = QueryBuilder::new(
        "INSERT INTO oauth_access_tokens \
         (id, user_id, client_id, name, scopes, family_id, revoked, created_at, updated_at, expires_at) ",
    );
    query.push_values(rows.iter().map(|(access, _)| access), |mut row, access| {
        row.push_bind(access.id.as_str())
            .push_bind(access.user_id.as_deref())
            .push_bind(access.client_id.as_str())
            .push_bind(access.name.as_deref())
            .push_bind(to_json(&access.scopes))
            .push_bind(access.family_id.as_deref())
            .push("FALSE")
            .push_bind(access.created_at)
            .push_bind(access.created_at)
            .push_bind(access.expires_at);
    });
    query
}

/// The `INSERT` of every refresh token in `rows`; `None` when there is none.
pub(crate) fn refresh_tokens<'a, DB>(
    rows: &'a [(AccessTokenRecord, Option<RefreshTokenRecord>)],
) -> Option<QueryBuilder<'a, DB>>
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    DateTime<Utc>: Encode<'a, DB> + Type<DB>,
    Option<DateTime<Utc>>: Encode<'a, DB> + Type<DB>,
{
    let mut refresh = rows.iter().filter_map(|(_, refresh)| refresh.as_ref()).peekable();
    refresh.peek()?;
    let mut query = QueryBuilder::new(
        "INSERT INTO oauth_refresh_tokens \
         (id, access_token_id, client_id, user_id, scopes, family_id, revoked, created_at, expires_at, auth_time, dpop_jkt) ",
    );
    query.push_values(refresh, |mut row, refresh| {
        row.push_bind(refresh.id.as_str())
            .push_bind(refresh.access_token_id.as_str())
            .push_bind(refresh.client_id.as_str())
            .push_bind(refresh.user_id.as_deref())
            .push_bind(to_json(&refresh.scopes))
            .push_bind(refresh.family_id.as_str())
            .push("FALSE")
            .push_bind(refresh.created_at)
            .push_bind(refresh.expires_at)
            .push_bind(refresh.auth_time)
            .push_bind(refresh.dpop_jkt.as_deref());
    });
    Some(query)
}
