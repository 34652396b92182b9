-- Every PROST process caches Apps (by API key), schema subjects and registry
-- settings, and contracts, and drops an entry when told on the channel
-- prost_invalidate (pkg/invalidate). These triggers send that notice from the
-- writing transaction itself: Postgres delivers it when, and only when, the
-- change commits, whoever made it (PROST, or an operator in psql). Before, the
-- writer sent it after its commit, and a process that died in between left
-- every other process on its cached copy until the cache's TTL. A notice can
-- now be missed only while a process's listener reconnects, and the Feed
-- drops every cached entry when it does.
--
-- The payload is what invalidate.Feed reads: {"t": topic, "k": key}, with the
-- keys the stores use (pkg/domain/apps, registry, contracts). Repeats within
-- one transaction are folded into one by Postgres.
CREATE FUNCTION prost_invalidate_row(tbl text, r jsonb) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_notify('prost_invalidate', json_build_object('t', k.topic, 'k', k.key)::text)
    FROM (SELECT CASE tbl WHEN 'apps' THEN 'apps' WHEN 'contracts' THEN 'contracts' ELSE 'registry' END AS topic,
                 CASE tbl
                     WHEN 'apps' THEN r->>'api_key'
                     WHEN 'contracts' THEN (r->>'tenant_id') || '/' || (r->>'type')
                     WHEN 'registry_config' THEN
                         (r->>'tenant_id') || CASE WHEN r->>'subject' = '' THEN '' ELSE '/' || (r->>'subject') END
                     ELSE (r->>'tenant_id') || '/' || (r->>'subject')
                 END AS key) k
$$;

CREATE FUNCTION prost_invalidate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM prost_invalidate_row(TG_TABLE_NAME, to_jsonb(OLD));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM prost_invalidate_row(TG_TABLE_NAME, to_jsonb(NEW));
    END IF;
    RETURN NULL;
END
$$;

-- An App is cached only once found, so a new one needs no notice.
CREATE TRIGGER apps_invalidate AFTER UPDATE OR DELETE ON apps
    FOR EACH ROW EXECUTE FUNCTION prost_invalidate();
-- A subject or contract that does not exist is cached as such: every change
-- counts.
CREATE TRIGGER registry_subjects_invalidate AFTER INSERT OR UPDATE OR DELETE ON registry_subjects
    FOR EACH ROW EXECUTE FUNCTION prost_invalidate();
CREATE TRIGGER registry_schemas_invalidate AFTER INSERT OR UPDATE OR DELETE ON registry_schemas
    FOR EACH ROW EXECUTE FUNCTION prost_invalidate();
CREATE TRIGGER registry_config_invalidate AFTER INSERT OR UPDATE OR DELETE ON registry_config
    FOR EACH ROW EXECUTE FUNCTION prost_invalidate();
CREATE TRIGGER contracts_invalidate AFTER INSERT OR UPDATE OR DELETE ON contracts
    FOR EACH ROW EXECUTE FUNCTION prost_invalidate();
