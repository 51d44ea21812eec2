"""The gRPC side: server (health, reflection, TLS), token auth, the servicer's error table, proto conversion."""
