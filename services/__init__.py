"""The mesh's services: one package per service, each servicer → engine → model family."""
