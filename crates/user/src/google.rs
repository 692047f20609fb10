//! Google sign-in: OAuth 2.0 authorization code flow with PKCE (RFC 7636, S256), through the
//! `oauth2` crate, then the OpenID Connect userinfo endpoint for the identity.
//!
//! Endpoints default to Google's (settings `user.google.*_url`); tests point them at a local fake
//! that answers with Google's documented shapes.

use std::borrow::Cow;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use studio_core::Error;

use crate::settings::GoogleSettings;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A configured Google OAuth client.
#[derive(Clone)]
pub struct Google {
    client: Client,
    http: reqwest::Client,
    settings: GoogleSettings,
}

impl std::fmt::Debug for Google {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Google")
            .field("client_id", &self.settings.client_id)
            .finish_non_exhaustive()
    }
}

/// A started sign-in.
#[derive(Debug)]
pub struct Started {
    pub authorization_url: String,
    pub state: String,
    pub pkce_verifier: SecretString,
}

/// Who Google says signed in (OpenID Connect standard claims).
#[derive(Debug, Clone, Deserialize)]
pub struct GoogleIdentity {
    #[serde(rename = "sub")]
    pub subject: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub name: String,
}

impl Google {
    /// Builds the client. Errors name the bad `user.google.*` URL.
    pub fn new(settings: GoogleSettings) -> Result<Google, String> {
        let client = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                settings.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(
                AuthUrl::new(settings.auth_url.clone())
                    .map_err(|e| format!("user.google.auth_url: {e}"))?,
            )
            .set_token_uri(
                TokenUrl::new(settings.token_url.clone())
                    .map_err(|e| format!("user.google.token_url: {e}"))?,
            );
        // Following redirects from the token endpoint would open an SSRF hole (oauth2 docs).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(Google {
            client,
            http,
            settings,
        })
    }

    pub fn state_ttl_s(&self) -> i64 {
        self.settings.state_ttl_s
    }

    /// The authorization URL for `redirect_uri` (which must be registered), with a fresh state
    /// and PKCE challenge; scopes `openid email profile`.
    pub fn start(&self, redirect_uri: &str) -> Result<Started, Error> {
        if !self
            .settings
            .redirect_uris
            .iter()
            .any(|u| u == redirect_uri)
        {
            return Err(Error::invalid(
                "redirect_uri",
                "is not one of the redirect URIs configured in user.google.redirect_uris",
            ));
        }
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|_| Error::invalid("redirect_uri", "must be an absolute URL"))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("openid".to_owned()))
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Owned(redirect))
            .url();
        Ok(Started {
            authorization_url: url.to_string(),
            state: state.secret().clone(),
            pkce_verifier: SecretString::from(verifier.secret().clone()),
        })
    }

    /// Exchanges `code` for tokens at the token endpoint and reads the userinfo.
    /// `Unauthenticated` when Google refuses the code; `Unavailable` when it cannot be reached.
    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
    ) -> Result<GoogleIdentity, Error> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| Error::internal())?;
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .set_redirect_uri(Cow::Owned(redirect))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "google token exchange failed");
                match e {
                    oauth2::RequestTokenError::ServerResponse(_) => {
                        Error::unauthenticated("Google refused the sign-in code; start again")
                    }
                    _ => Error::new(
                        studio_core::ErrorCode::Unavailable,
                        "Google sign-in is unavailable; retry later",
                    ),
                }
            })?;
        let response = self
            .http
            .get(&self.settings.userinfo_url)
            .bearer_auth(token.access_token().secret())
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                tracing::warn!(error = %e, "google userinfo failed");
                Error::new(
                    studio_core::ErrorCode::Unavailable,
                    "Google sign-in is unavailable; retry later",
                )
            })?;
        response.json::<GoogleIdentity>().await.map_err(|e| {
            tracing::warn!(error = %e, "google userinfo unreadable");
            Error::new(
                studio_core::ErrorCode::Unavailable,
                "Google answered with an unexpected userinfo document",
            )
        })
    }
}
