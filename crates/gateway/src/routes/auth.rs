//! `/v1/auth/*` and `/v1/me`: accounts and tokens, relayed to the user service.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use studio_proto::user::v1 as pb;

use crate::dto::*;
use crate::error::{ApiResult, Problems};
use crate::extract::{ApiJson, ApiQuery, Authed};
use crate::routes::grpc;
use crate::state::AppState;

/// Creates an account and signs it in.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 201, description = "Account created", body = TokenPairDto), Problems))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<TokenPairDto>)> {
    let request = pb::RegisterRequest {
        email: body.email,
        password: body.password,
        display_name: body.display_name,
    };
    let pair = state
        .user
        .clone()
        .register(grpc(request, None, state.timeout))
        .await?;
    Ok((StatusCode::CREATED, Json(pair.into_inner().into())))
}

/// Signs in with email and password.
#[utoipa::path(post, path = "/v1/auth/sign-in", tag = "auth", request_body = SignInBody,
    responses((status = 200, description = "Signed in", body = TokenPairDto), Problems))]
pub async fn sign_in(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignInBody>,
) -> ApiResult<Json<TokenPairDto>> {
    let request = pb::SignInRequest {
        email: body.email,
        password: body.password,
    };
    let pair = state
        .user
        .clone()
        .sign_in(grpc(request, None, state.timeout))
        .await?;
    Ok(Json(pair.into_inner().into()))
}

/// Exchanges a refresh token for a new pair. Presenting a spent token revokes its family.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, description = "New pair", body = TokenPairDto), Problems))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<TokenPairDto>> {
    let request = pb::RefreshRequest {
        refresh_token: body.refresh_token,
    };
    let pair = state
        .user
        .clone()
        .refresh(grpc(request, None, state.timeout))
        .await?;
    Ok(Json(pair.into_inner().into()))
}

/// Signs out: revokes the refresh token's family. Idempotent.
#[utoipa::path(post, path = "/v1/auth/sign-out", tag = "auth", request_body = RefreshBody,
    responses((status = 204, description = "Signed out"), Problems))]
pub async fn sign_out(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<StatusCode> {
    let request = pb::SignOutRequest {
        refresh_token: body.refresh_token,
    };
    state
        .user
        .clone()
        .sign_out(grpc(request, None, state.timeout))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts Google sign-in (authorization code + PKCE); send the browser to `authorization_url`.
#[utoipa::path(get, path = "/v1/auth/google/start", tag = "auth", params(GoogleStartQuery),
    responses((status = 200, description = "Sign-in started", body = GoogleStartDto), Problems))]
pub async fn google_start(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<GoogleStartQuery>,
) -> ApiResult<Json<GoogleStartDto>> {
    let request = pb::StartGoogleSignInRequest {
        redirect_uri: query.redirect_uri,
    };
    let started = state
        .user
        .clone()
        .start_google_sign_in(grpc(request, None, state.timeout))
        .await?
        .into_inner();
    Ok(Json(GoogleStartDto {
        authorization_url: started.authorization_url,
        state: started.state,
        binding: started.binding,
        expires_in: started.expires_in_s,
    }))
}

/// Finishes Google sign-in with the `code` and `state` Google redirected with, and the
/// `binding` that `/v1/auth/google/start` gave this client.
#[utoipa::path(post, path = "/v1/auth/google/finish", tag = "auth", request_body = GoogleFinishBody,
    responses((status = 200, description = "Signed in", body = TokenPairDto), Problems))]
pub async fn google_finish(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<GoogleFinishBody>,
) -> ApiResult<Json<TokenPairDto>> {
    let request = pb::FinishGoogleSignInRequest {
        code: body.code,
        state: body.state,
        binding: body.binding,
    };
    let pair = state
        .user
        .clone()
        .finish_google_sign_in(grpc(request, None, state.timeout))
        .await?;
    Ok(Json(pair.into_inner().into()))
}

/// Verifies an address with the token from the link in its verification mail. A spent link
/// answers the same while the address stays verified.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "auth", request_body = VerifyEmailBody,
    responses((status = 200, description = "Address verified", body = VerifiedEmailDto), Problems))]
pub async fn verify_email(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<VerifyEmailBody>,
) -> ApiResult<Json<VerifiedEmailDto>> {
    let request = pb::VerifyEmailRequest { token: body.token };
    let verified = state
        .user
        .clone()
        .verify_email(grpc(request, None, state.timeout))
        .await?
        .into_inner();
    Ok(Json(VerifiedEmailDto {
        email: verified.email,
    }))
}

/// Sends the signed-in account a new verification mail. 409 when the address is already
/// verified or mail is not configured; 429 within `user.mail.resend_after_s` of the last one.
#[utoipa::path(post, path = "/v1/me/verification-email", tag = "auth", security(("bearer" = [])),
    responses((status = 202, description = "Mail queued", body = VerificationSentDto), Problems))]
pub async fn resend_verification(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<(StatusCode, Json<VerificationSentDto>)> {
    let sent = state
        .user
        .clone()
        .resend_verification(grpc(
            pb::ResendVerificationRequest {},
            Some(&authed.token),
            state.timeout,
        ))
        .await?
        .into_inner();
    Ok((
        StatusCode::ACCEPTED,
        Json(VerificationSentDto {
            expires_in: sent.expires_in_s,
        }),
    ))
}

/// The signed-in account.
#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The account", body = UserDto), Problems))]
pub async fn me(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<UserDto>> {
    let user = state
        .user
        .clone()
        .get_me(grpc(
            pb::GetMeRequest {},
            Some(&authed.token),
            state.timeout,
        ))
        .await?;
    Ok(Json(user.into_inner().into()))
}
