-- ack_messages plans each of its statements once per connection. PostgreSQL gives a plpgsql statement
-- with parameters five custom plans and then compares them with a generic plan; `id = any($1)` over
-- an array of unknown length makes the generic plan look dearer than a one-id custom plan, so it went
-- on planning all three statements afresh on every ack: ~280 µs of planning for ~70 µs of work
-- (README, "Performance"). The generic plans are the ones a custom plan would pick for a batch:
-- primary-key lookups of the given ids. A function-level setting applies to the statements inside it
-- only, and is restored when the call returns.
alter function ack_messages(text, uuid[], timestamptz) set plan_cache_mode = force_generic_plan;
