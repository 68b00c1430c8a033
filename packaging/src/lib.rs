//! kassa-packaging: signed update bundles (work in progress).
