-- A counter per tenant that every change of the tenant's rules moves (a rule
-- created, a new version, enabled, disabled, its webhook disabled, an
-- overrun counted or forgotten). The rules engine keeps each tenant's
-- active rules in memory, indexed by the event types they can match, and
-- reloads them only when this counter moved: one small read per batch
-- instead of every rule. The row lock orders the changes of one tenant, so
-- the counter moves in commit order.
CREATE TABLE rule_generations (
    tenant_id uuid   PRIMARY KEY,
    gen       bigint NOT NULL
);

CREATE FUNCTION prost_bump_rule_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rule_generations (tenant_id, gen) VALUES (COALESCE(NEW.tenant_id, OLD.tenant_id), 1)
    ON CONFLICT (tenant_id) DO UPDATE SET gen = rule_generations.gen + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER rules_generation AFTER INSERT OR UPDATE OR DELETE ON rules
    FOR EACH ROW EXECUTE FUNCTION prost_bump_rule_generation();
