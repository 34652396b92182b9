package filter

import (
	"errors"
	"fmt"
	"strings"

	"github.com/antlr/antlr4/runtime/Go/antlr"
	cesql "github.com/cloudevents/sdk-go/sql/v2"
	"github.com/cloudevents/sdk-go/sql/v2/gen"
	"github.com/cloudevents/sdk-go/sql/v2/parser"
)

// SQLError is an invalid CESQL expression and where in it the problem is.
type SQLError struct {
	// Line and Column are 1-based; 0 when the parser could not tell.
	Line, Column int
	Msg          string
}

func (e *SQLError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return e.Msg
}

// SQL is a compiled CESQL expression, used as a filter. Match is safe for
// concurrent use.
type SQL struct {
	src  string
	expr cesql.Expression
}

// String returns the expression as given.
func (s *SQL) String() string { return s.src }

// CompileSQL parses a CESQL v1 expression. A syntax error is an *SQLError
// locating the first problem.
func CompileSQL(src string) (*SQL, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &SQLError{Msg: "the CESQL expression is empty"}
	}
	if len(src) > MaxSQLLen {
		return nil, &SQLError{Msg: fmt.Sprintf("the CESQL expression is longer than %d bytes", MaxSQLLen)}
	}
	// The sdk's parser reports syntax errors without their position, lets
	// the lexer print to stderr, and can panic on some errors (it calls a
	// method on a nil exception). So the expression is first parsed here
	// with listeners that record positions, and handed to the sdk only when
	// it is free of syntax errors.
	if err := syntaxCheck(src); err != nil {
		return nil, err
	}
	expr, err := safeParse(src)
	if err != nil {
		return nil, &SQLError{Msg: strings.TrimPrefix(err.Error(), "parse error: ")}
	}
	return &SQL{src: src, expr: expr}, nil
}

func safeParse(src string) (expr cesql.Expression, err error) {
	defer func() {
		if r := recover(); r != nil {
			expr, err = nil, fmt.Errorf("invalid expression: %v", r)
		}
	}()
	expr, err = parser.Parse(src)
	if err == nil && expr == nil {
		err = errors.New("invalid expression")
	}
	return expr, err
}

// positionListener records the first syntax error with its position.
type positionListener struct {
	*antlr.DefaultErrorListener
	first *SQLError
}

func (l *positionListener) SyntaxError(_ antlr.Recognizer, _ any, line, column int, msg string, _ antlr.RecognitionException) {
	if l.first == nil {
		// ANTLR columns are 0-based.
		l.first = &SQLError{Line: line, Column: column + 1, Msg: "syntax error: " + msg}
	}
}

func syntaxCheck(src string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &SQLError{Msg: fmt.Sprintf("invalid expression: %v", r)}
		}
	}()
	l := &positionListener{DefaultErrorListener: antlr.NewDefaultErrorListener()}
	lexer := gen.NewCESQLParserLexer(parser.NewCaseChangingStream(antlr.NewInputStream(src), true))
	lexer.RemoveErrorListeners()
	lexer.AddErrorListener(l)
	p := gen.NewCESQLParserParser(antlr.NewCommonTokenStream(lexer, antlr.TokenDefaultChannel))
	p.RemoveErrorListeners()
	p.AddErrorListener(l)
	p.Cesql()
	if l.first != nil {
		return l.first
	}
	return nil
}

// Eval evaluates the expression on ev and returns its raw result and error,
// as the sdk does (for tests and diagnostics).
func (s *SQL) Eval(ev *Event) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("cesql: evaluation panicked: %v", r)
		}
	}()
	return s.expr.Evaluate(*ev.sdkEvent())
}

// Match reports whether the expression evaluates to the boolean TRUE on ev.
// An evaluation error (a missing attribute among them) or a result that is
// not a boolean is no match, as the Subscriptions API requires.
func (s *SQL) Match(ev *Event) bool {
	v, err := s.Eval(ev)
	if err != nil {
		return false
	}
	b, ok := v.(bool)
	return ok && b
}

func (s *SQL) attributes(map[string]bool) {}
