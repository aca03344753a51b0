"""An org's batch: started, planned, dispatched in chunks, watched, completed and summarised."""
