//! Health checker: components report status with reasons, rolled up worst-first, with optional HTTP endpoints for people and Kubernetes.
//!
//! Status: scaffolding only; the implementation lands with its issue.
