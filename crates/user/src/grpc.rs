//! The gRPC adapter: proto messages in, domain calls, proto messages out. No logic lives here.

use studio_auth::Role;
use studio_proto::user::v1 as pb;
use tonic::{Request, Response, Status};

use crate::service::{Account, TokenPair, UserService};

/// `studio.user.v1.UserService` over [`UserService`].
#[derive(Debug, Clone)]
pub struct GrpcUser {
    pub service: UserService,
}

impl From<Account> for pb::User {
    fn from(account: Account) -> Self {
        pb::User {
            id: account.id.to_string(),
            email: account.email,
            display_name: account.display_name,
            role: match account.role {
                Role::User => pb::Role::User,
                Role::Admin => pb::Role::Admin,
            } as i32,
            created_at_ms: account.created_at.timestamp_millis(),
            sign_in_methods: account.sign_in_methods,
            email_verified: account.email_verified,
        }
    }
}

impl From<TokenPair> for pb::TokenPair {
    fn from(pair: TokenPair) -> Self {
        pb::TokenPair {
            access_token: pair.access_token,
            token_type: "Bearer".to_owned(),
            expires_in_s: pair.expires_in_s,
            refresh_token: pair.refresh_token,
            refresh_expires_in_s: pair.refresh_expires_in_s,
            user: Some(pair.user.into()),
        }
    }
}

impl GrpcUser {
    async fn caller<T>(&self, request: &Request<T>) -> Result<studio_auth::Caller, Status> {
        let token = studio_auth::bearer_from_metadata(request.metadata())
            .map_err(|e| Status::from(studio_core::Error::from(e)))?;
        Ok(self.service.authenticate(token).await?)
    }
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for GrpcUser {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let r = request.into_inner();
        let pair = self
            .service
            .register(&r.email, &r.password, &r.display_name)
            .await?;
        Ok(Response::new(pair.into()))
    }

    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let r = request.into_inner();
        let pair = self.service.sign_in(&r.email, &r.password).await?;
        Ok(Response::new(pair.into()))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let pair = self
            .service
            .refresh(&request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(pair.into()))
    }

    async fn sign_out(
        &self,
        request: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        self.service
            .sign_out(&request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(pb::SignOutResponse {}))
    }

    async fn get_me(
        &self,
        request: Request<pb::GetMeRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(self.service.me(caller).await?.into()))
    }

    async fn start_google_sign_in(
        &self,
        request: Request<pb::StartGoogleSignInRequest>,
    ) -> Result<Response<pb::StartGoogleSignInResponse>, Status> {
        let started = self
            .service
            .start_google(&request.into_inner().redirect_uri)
            .await?;
        Ok(Response::new(pb::StartGoogleSignInResponse {
            authorization_url: started.authorization_url,
            state: started.state,
            expires_in_s: started.expires_in_s,
            binding: started.binding,
        }))
    }

    async fn finish_google_sign_in(
        &self,
        request: Request<pb::FinishGoogleSignInRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let r = request.into_inner();
        let pair = self
            .service
            .finish_google(&r.code, &r.state, &r.binding)
            .await?;
        Ok(Response::new(pair.into()))
    }

    async fn verify_email(
        &self,
        request: Request<pb::VerifyEmailRequest>,
    ) -> Result<Response<pb::VerifyEmailResponse>, Status> {
        let email = self
            .service
            .verify_email(&request.into_inner().token)
            .await?;
        Ok(Response::new(pb::VerifyEmailResponse { email }))
    }

    async fn resend_verification(
        &self,
        request: Request<pb::ResendVerificationRequest>,
    ) -> Result<Response<pb::ResendVerificationResponse>, Status> {
        let caller = self.caller(&request).await?;
        let expires_in_s = self.service.resend_verification(caller).await?;
        Ok(Response::new(pb::ResendVerificationResponse {
            expires_in_s,
        }))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let kid = self.service.rotate_signing_key(caller).await?;
        Ok(Response::new(pb::RotateSigningKeyResponse { kid }))
    }
}
