-- Request ids in Lambda's form (a lowercase UUID) are stored as their 16 bytes, in the row
-- and in the request index (about 40 bytes per event less); other request ids stay text.
-- The same rule as `store::event_keys::request_id_bytes`.
UPDATE events SET request_id = unhex(replace(request_id, '-', ''))
WHERE typeof(request_id) = 'text' AND length(request_id) = 36
  AND request_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]';
