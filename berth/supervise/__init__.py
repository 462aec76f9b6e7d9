"""Starting and running local processes: the layer below both the add-on backends and (later) the
build and run core. It imports only the foundation."""
