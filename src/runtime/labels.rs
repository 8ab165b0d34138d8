//! The labels berth puts on everything it creates. They are the whole record of what
//! berth owns: nothing without `berth.project` is ever touched.

/// The project an object belongs to.
pub const PROJECT: &str = "berth.project";
/// The service a container belongs to.
pub const SERVICE: &str = "berth.service";
/// The replica slot (1-based) a container fills.
pub const SLOT: &str = "berth.slot";
/// The hash of the normalized container spec.
pub const SPEC: &str = "berth.spec";
/// Per-part hashes of the spec, for saying what changed.
pub const PARTS: &str = "berth.parts";
/// The desired-state commit the container was created for.
pub const COMMIT: &str = "berth.commit";
/// The image reference as the desired state names it.
pub const IMAGE: &str = "berth.image";
/// What the container is: `replica`, `candidate` (a replacement not yet promoted) or
/// `migration`.
pub const ROLE: &str = "berth.role";
/// For migration containers: the migration's name.
pub const MIGRATION: &str = "berth.migration";
/// The host that created the container (a fleet shares one repository).
pub const HOST: &str = "berth.host";
