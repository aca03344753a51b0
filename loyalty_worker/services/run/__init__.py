"""An org's batch: started, planned, dispatched in chunks, watched, completed and summarised.

- ``start``: a trigger's run (``since`` read, the org found), then ``batch.start_batch``;
- ``batch``: a run's three steps, over ``context`` (what a run is asked, reads and writes
  through and hands work to), ``opening`` (its lock and registration, or a failed start),
  ``planning`` (the plan under the run's options and retries) and ``dispatch`` (the plan
  recorded, settled where it can be, the rest sent in chunks);
- ``plan``: ``plan_run`` reads ``listings`` (customers, Alpine IQ's contacts), the order
  history (in ``history_slices`` when other workers share it) and ``profile_reads`` side by
  side into one ``RunPlan``; ``memo`` carries an incremental run's unchanged customers over;
- ``jobs``: a chunk's or a lone customer's sync as its task runs it, its phones kept aside by
  ``phones``; ``closing``: results recorded, the run summarised (``summary``) with one alert;
- ``heartbeat``, ``watchdog``: a run kept alive while it works, its lost work sent again;
  ``nightly``: which orgs start their run now; ``view``, ``triggers``: the API's side.
"""
