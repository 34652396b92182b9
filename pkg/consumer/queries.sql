-- name: ClaimMessages :many
-- Records the messages a consumer is about to process and returns the ids
-- that were new: the rest were processed before and must be skipped.
INSERT INTO consumer_processed (consumer, msg_id)
SELECT @consumer::text, m.msg_id
FROM unnest(@msg_ids::text[]) AS m(msg_id)
ON CONFLICT (consumer, msg_id) DO NOTHING
RETURNING msg_id;
