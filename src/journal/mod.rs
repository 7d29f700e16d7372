//! See the crate docs for this layer's job.
