package outbox

// SetBeforeMark installs a hook that runs after a round's acknowledgements
// and before its rows are marked published; an error ends the round as a
// crash between publish and mark would.
func SetBeforeMark(cfg *Config, fn func(ids []int64) error) { cfg.beforeMark = fn }
