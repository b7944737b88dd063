-- With thousands of endpoints, each delivery lands in a different leaf of
-- every index that starts with `endpoint`, and a commit writes each touched
-- page to the WAL: an insert into such an index cost ~14 us of the writer's
-- time per delivery with 10,000 endpoints, against ~1 us with one (see
-- bench/tenants.py). (endpoint, id) only served the delivery list filtered by
-- endpoint alone; that page is now read from (endpoint, status, id), one
-- bounded seek per status merged newest first (queries.ENDPOINT_PAGE).
DROP INDEX deliveries_endpoint_id;
