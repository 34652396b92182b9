// Package condition compiles and evaluates a rule's condition: a CEL
// expression (cel.dev/cel-go) over a CloudEvent's attributes and its data.
//
// The expression sees these variables:
//
//	id, source, type, specversion   string (always set)
//	subject, datacontenttype,
//	dataschema                      string (unset when the event has none)
//	time                            timestamp (unset when the event has none)
//	extensions                      map of the extensions (string, bool or int)
//	data                            the JSON data (dyn: objects are maps,
//	                                integers are int, other numbers double),
//	                                bytes for binary data, null when absent
//
// Reading an unset variable or a missing map key is an evaluation error, and
// Eval reports an error as "no match" (use has(data.x) or
// has(extensions.x) to test presence). An expression must be boolean: a
// condition whose type is known not to be bool is refused at compile time,
// and a dynamic result that is not a boolean is no match. Integers and
// doubles compare across types (data.amount > 1000 works for 1200.5).
//
// Evaluation is bounded: every Condition has a cost budget (CostLimit) and
// Eval stops at the context's deadline.
//
// Eval also reports the inputs the condition read: for every attribute,
// extension or data path the expression evaluated (short-circuited branches
// are not read), the path as written (data.amount, extensions.region,
// data["k"]) and its value.
package condition

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/prost-platform/prost/pkg/cloudevent"
)

const (
	// MaxLen caps a condition's source, in bytes.
	MaxLen = 4096
	// CostLimit is the evaluation budget of a condition, in CEL cost units
	// (about one per operation; comprehensions pay per element).
	CostLimit = 100_000
	// DefaultTimeout bounds one evaluation when the caller's context has no
	// earlier deadline.
	DefaultTimeout = 100 * time.Millisecond
	// maxInputBytes caps the JSON of one recorded input value.
	maxInputBytes = 4096
)

// Error is an invalid condition and where in it the problem is.
type Error struct {
	// Line and Column are 1-based; 0 when the problem has no position.
	Line, Column int
	Msg          string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return e.Msg
}

// variables are the names the environment declares.
var variables = map[string]*cel.Type{
	"id": cel.StringType, "source": cel.StringType, "type": cel.StringType, "specversion": cel.StringType,
	"subject": cel.StringType, "datacontenttype": cel.StringType, "dataschema": cel.StringType,
	"time": cel.TimestampType, "extensions": cel.MapType(cel.StringType, cel.DynType), "data": cel.DynType,
}

var env = func() *cel.Env {
	opts := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(MaxLen),
		cel.ParserRecursionLimit(100),
	}
	for name, t := range variables {
		opts = append(opts, cel.Variable(name, t))
	}
	e, err := cel.NewEnv(opts...)
	if err != nil {
		panic(fmt.Sprintf("condition: CEL environment: %v", err)) // a programming error, caught by every test
	}
	return e
}()

// Condition is a compiled condition. Eval is safe for concurrent use.
type Condition struct {
	src    string
	prg    cel.Program
	inputs []input
}

type input struct {
	id   int64
	path string
}

// String returns the source of the condition.
func (c *Condition) String() string { return c.src }

// Compile parses and type-checks src. Errors are *Error locating the first
// problem.
func Compile(src string) (*Condition, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Msg: "the condition is empty"}
	}
	if len(src) > MaxLen {
		return nil, &Error{Msg: fmt.Sprintf("the condition is longer than %d bytes", MaxLen)}
	}
	checked, iss := env.Compile(src)
	if iss.Err() != nil {
		first := iss.Errors()[0]
		e := &Error{Msg: first.Message}
		if loc := first.Location; loc != nil && loc.Line() > 0 {
			e.Line, e.Column = loc.Line(), loc.Column()+1
		}
		return nil, e
	}
	if t := checked.OutputType(); !t.IsAssignableType(cel.BoolType) && t != cel.DynType {
		return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("the condition must be a boolean expression, not %s", t)}
	}
	prg, err := env.Program(checked,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(64),
		cel.EvalOptions(cel.OptTrackState),
	)
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	return &Condition{src: src, prg: prg, inputs: inputsOf(checked.NativeRep())}, nil
}

// Inputs is what a condition read: path as written => value.
type Inputs map[string]any

// Eval evaluates the condition on e. It returns whether the condition is the
// boolean true, the inputs it read, and the evaluation error if there was one
// (then matched is false).
func (c *Condition) Eval(ctx context.Context, e *cloudevent.Event) (matched bool, in Inputs, err error) {
	vars, err := Activation(e)
	if err != nil {
		return false, nil, err
	}
	return c.EvalVars(ctx, vars)
}

// EvalVars is Eval on variables made once per event with Activation (or
// ActivationWith), so that several conditions share one decoding of the
// data. The variables are only read.
func (c *Condition) EvalVars(ctx context.Context, vars map[string]any) (matched bool, in Inputs, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			matched, err = false, fmt.Errorf("condition: evaluation panicked: %v", r)
		}
	}()
	out, details, evalErr := c.prg.ContextEval(ctx, vars)
	in = Inputs{}
	if details != nil {
		st := details.State()
		for _, i := range c.inputs {
			v, ok := st.Value(i.id)
			if !ok || types.IsError(v) || types.IsUnknown(v) {
				continue
			}
			in[i.path] = native(v)
		}
	}
	if evalErr != nil {
		return false, in, evalErr
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, in, fmt.Errorf("condition: result is %s, not bool", out.Type().TypeName())
	}
	return bool(b), in, nil
}

// Activation returns the variables of e as the condition sees them (unset
// optional attributes are left out).
func Activation(e *cloudevent.Event) (map[string]any, error) {
	var data any
	if len(e.Data) > 0 {
		d, err := DecodeJSON(e.Data)
		if err != nil {
			return nil, fmt.Errorf("condition: event data: %w", err)
		}
		data = d
	}
	return ActivationWith(e, data), nil
}

// ActivationWith is Activation with the JSON data already decoded (by
// DecodeJSON; nil when the event has no JSON data).
func ActivationWith(e *cloudevent.Event, data any) map[string]any {
	vars := map[string]any{
		"id": e.ID, "source": e.Source, "type": e.Type, "specversion": e.SpecVersion,
	}
	if e.Subject != "" {
		vars["subject"] = e.Subject
	}
	if e.DataContentType != "" {
		vars["datacontenttype"] = e.DataContentType
	}
	if e.DataSchema != "" {
		vars["dataschema"] = e.DataSchema
	}
	if !e.Time.IsZero() {
		vars["time"] = e.Time
	}
	ext := make(map[string]any, len(e.Extensions))
	for k, v := range e.Extensions {
		if n, ok := v.(int32); ok {
			v = int64(n)
		}
		ext[k] = v
	}
	vars["extensions"] = ext
	switch {
	case len(e.Data) > 0:
		vars["data"] = data
	case e.DataBase64 != nil:
		vars["data"] = e.DataBase64
	default:
		vars["data"] = types.NullValue
	}
	return vars
}

// DecodeJSON decodes JSON with integers as int64 and other numbers as
// float64, so CEL integer arithmetic works on JSON integers.
func DecodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// inputsOf finds the maximal paths over declared variables: identifiers,
// field selections and constant indexes (data, data.amount, data["k"][0]).
func inputsOf(a *ast.AST) []input {
	var out []input
	seen := map[string]bool{}
	all := ast.MatchDescendants(ast.NavigateAST(a), ast.AllMatcher())
	for _, n := range all {
		p, ok := path(n)
		if !ok || seen[p] {
			continue
		}
		if parent, has := n.Parent(); has {
			if _, extends := path(parent); extends && operandOf(parent) == n.ID() {
				continue // a longer path covers this one
			}
		}
		seen[p] = true
		out = append(out, input{id: n.ID(), path: p})
	}
	return out
}

// operandOf is the id of the expression a select or index applies to.
func operandOf(e ast.Expr) int64 {
	switch e.Kind() {
	case ast.SelectKind:
		return e.AsSelect().Operand().ID()
	case ast.CallKind:
		if args := e.AsCall().Args(); len(args) == 2 {
			return args[0].ID()
		}
	}
	return 0
}

func path(e ast.Expr) (string, bool) {
	switch e.Kind() {
	case ast.IdentKind:
		name := e.AsIdent()
		_, ok := variables[name]
		return name, ok
	case ast.SelectKind:
		s := e.AsSelect()
		p, ok := path(s.Operand())
		if !ok {
			return "", false
		}
		if s.IsTestOnly() {
			return "has(" + p + "." + s.FieldName() + ")", true
		}
		return p + "." + s.FieldName(), true
	case ast.CallKind:
		c := e.AsCall()
		if c.FunctionName() != operators.Index || len(c.Args()) != 2 || c.Args()[1].Kind() != ast.LiteralKind {
			return "", false
		}
		p, ok := path(c.Args()[0])
		if !ok {
			return "", false
		}
		lit := c.Args()[1].AsLiteral()
		if s, isStr := lit.(types.String); isStr {
			return p + "[" + strconv.Quote(string(s)) + "]", true
		}
		return p + "[" + fmt.Sprint(lit.Value()) + "]", true
	}
	return "", false
}

// native turns a CEL value into something encoding/json writes faithfully,
// replacing values too large to keep in a decision.
func native(v ref.Val) any {
	var out any
	switch x := v.(type) {
	case types.Null:
		return nil
	case types.Timestamp:
		out = x.Time.UTC().Format(time.RFC3339Nano)
	case types.Duration:
		out = x.Duration.String()
	default:
		out = v.Value()
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Sprint(out)
	}
	if len(b) > maxInputBytes {
		return map[string]any{"omitted": true, "bytes": len(b)}
	}
	return json.RawMessage(b)
}
