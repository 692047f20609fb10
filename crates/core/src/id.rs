//! Typed ids: UUID v7 (time-ordered, so newest-first lists and cursors sort by id) wrapped in one
//! newtype per kind of object, so a `ProjectId` cannot be passed where a `UserId` is expected.
//! Parsing happens once at the edge and names the field on failure.

use crate::Error;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new time-ordered id (UUID v7).
            pub fn new() -> Self {
                $name(uuid::Uuid::now_v7())
            }

            /// Parses a request field; the error names `field` and says what is expected.
            pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
                uuid::Uuid::parse_str(value.trim())
                    .map($name)
                    .map_err(|_| Error::invalid(field, "must be a UUID such as 0192f0c1-7d3e-7cc1-9a3b-5b0f6e2d4c11"))
            }

            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(id: uuid::Uuid) -> Self {
                $name(id)
            }
        }
    };
}

typed_id!(
    /// A user account.
    UserId
);
typed_id!(
    /// A project: the text or topic a video is made from, with its settings.
    ProjectId
);
typed_id!(
    /// A scene of a project.
    SceneId
);
typed_id!(
    /// A stored media object of a project.
    AssetId
);
typed_id!(
    /// A job that turns a project into a video.
    JobId
);
typed_id!(
    /// A step of a job (a plan, a narration, a render, …).
    StepId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_field() {
        let err = ProjectId::parse("id", "42").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("id"));
        let id = ProjectId::new();
        assert_eq!(ProjectId::parse("id", &id.to_string()).unwrap(), id);
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = UserId::new();
        let b = UserId::new();
        assert!(a < b);
    }
}
