DROP TRIGGER IF EXISTS rules_generation ON rules;
DROP FUNCTION IF EXISTS prost_bump_rule_generation();
DROP TABLE IF EXISTS rule_generations;
