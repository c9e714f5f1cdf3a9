"""Search: the port, the embedded tantivy index, and the projection that keeps it current."""
