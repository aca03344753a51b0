"""What the loyalty dashboard shows and does, one module per page or concern."""
