//! Studio's gRPC contracts, generated from `proto/` at build time.
//!
//! One module per package, mirroring `proto/studio/<service>/v1/`. These types stop at each
//! service's edge: `grpc.rs` in a service converts them to domain types with `From`/`TryFrom`.
#![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]

/// `studio.common.v1`: pagination, aspect, health.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("studio.common.v1");
    }
}

/// `studio.user.v1`: accounts, sign-in, tokens.
pub mod user {
    pub mod v1 {
        tonic::include_proto!("studio.user.v1");
    }
}

/// `studio.project.v1`: projects, scenes, assets, presets.
pub mod project {
    pub mod v1 {
        tonic::include_proto!("studio.project.v1");
    }
}

/// `studio.credits.v1`: balances, ledger, holds, Stripe.
pub mod credits {
    pub mod v1 {
        tonic::include_proto!("studio.credits.v1");
    }
}

/// `studio.job.v1`: jobs, steps, progress events.
pub mod job {
    pub mod v1 {
        tonic::include_proto!("studio.job.v1");
    }
}

/// `studio.render.v1`: render tasks and results.
pub mod render {
    pub mod v1 {
        tonic::include_proto!("studio.render.v1");
    }
}

/// `studio.youtube.v1`: channels and uploads.
pub mod youtube {
    pub mod v1 {
        tonic::include_proto!("studio.youtube.v1");
    }
}

/// `studio.queue.v1`: the envelope every queue message carries.
pub mod queue {
    pub mod v1 {
        tonic::include_proto!("studio.queue.v1");
    }
}
