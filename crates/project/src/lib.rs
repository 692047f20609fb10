//! The project service: projects (text or topic, aspect, style, settings), their scenes and
//! assets, and style presets.
//!
//! - `domain.rs`: types and the checks that let values in; `service.rs`: the logic, owner-scoped;
//! - `grpc.rs`: the `studio.project.v1.ProjectService` adapter (authenticates every call);
//! - `repo.rs`: Postgres, every id matched with its owner; `settings.rs`, `startup.rs`.

pub mod domain;
pub mod grpc;
pub mod repo;
pub mod service;
pub mod settings;
pub mod startup;
