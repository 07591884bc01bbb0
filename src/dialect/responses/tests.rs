//! Translation fixtures, each output checked against the official Python SDK's types.
