//! Generated protocol code for every Chorus API, and the file descriptor set that server
//! reflection (and later the gateway) serve.

#![allow(missing_debug_implementations, unreachable_pub, clippy::all)]

/// Encoded `google.protobuf.FileDescriptorSet` of every Chorus proto and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chorus_descriptor.bin"));

pub mod google {
    pub mod api {
        include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
    }
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

pub mod chorus {
    pub mod admin {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chorus.admin.v1.rs"));
        }
    }
    pub mod contracts {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chorus.contracts.v1.rs"));
        }
    }
    pub mod payouts {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chorus.payouts.v1.rs"));
        }
    }
    pub mod measurement {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chorus.measurement.v1.rs"));
        }
    }
    pub mod identity {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chorus.identity.v1.rs"));
        }
    }
    pub mod r#type {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chorus.r#type.v1.rs"));
        }
    }
    pub mod event {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chorus.event.v1.rs"));
        }
    }
    pub mod matching {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chorus.matching.v1.rs"));
        }
    }
    pub mod registry {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chorus.registry.v1.rs"));
        }
    }
    pub mod webhooks {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/chorus.webhooks.v1.rs"));
        }
    }
}

pub use chorus::admin::v1 as admin;
pub use chorus::contracts::v1 as contracts;
pub use chorus::event::v1 as event;
pub use chorus::identity::v1 as identity;
pub use chorus::matching::v1 as matching;
pub use chorus::measurement::v1 as measurement;
pub use chorus::payouts::v1 as payouts;
pub use chorus::registry::v1 as registry;
pub use chorus::r#type::v1 as types;
pub use chorus::webhooks::v1 as webhooks;
