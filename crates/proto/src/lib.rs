//! Generated protobuf messages and tonic services for Outpost's APIs, one module per
//! `outpost.<service>.v1` package. The sources are the `.proto` files in `proto/`.

/// `outpost.identity.v1`: the identity service.
pub mod identity {
    /// Version 1.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("outpost.identity.v1");
    }
}

/// `outpost.agent.v1`: the agent's management API.
pub mod agent {
    /// Version 1.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("outpost.agent.v1");
    }
}

/// `outpost.hub.v1`: the hub's admin API.
pub mod hub {
    /// Version 1.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("outpost.hub.v1");
    }
}

/// `outpost.cloud.v1`: the control plane's operator API.
pub mod cloud {
    /// Version 1.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("outpost.cloud.v1");
    }
}

/// `outpost.host.v1`: outpostd's API.
pub mod host {
    /// Version 1.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("outpost.host.v1");
    }
}
