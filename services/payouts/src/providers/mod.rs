//! Provider adapters behind one port (being built).
