package factorysvc

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// This file holds what the templates ask the generator's model: request
// bodies for the generated tests, JSON Schemas and contracts of the events.

// body renders a JSON object of the entity's fields, each with the value
// pick gives ("" leaves the field out).
func (e *genEntity) body(pick func(f *genField) string) string {
	var parts []string
	for _, f := range e.Fields {
		if v := pick(f); v != "" {
			parts = append(parts, strconv.Quote(f.Name)+": "+v)
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// SampleBody is a valid body with every field set.
func (e *genEntity) SampleBody() string {
	return strconv.Quote(e.body(func(f *genField) string { return f.SampleJSON }))
}

// OtherBody is another valid body (the update).
func (e *genEntity) OtherBody() string {
	return strconv.Quote(e.body(func(f *genField) string { return f.OtherJSON }))
}

// Case is a body the module must refuse and the field it must name.
type Case struct {
	Name, Body, Field string
}

// InvalidCases are bodies that miss a required field or hold a value out of
// its bounds; each must be answered 422 naming the field.
func (e *genEntity) InvalidCases() []Case {
	var out []Case
	for _, f := range e.Fields {
		if f.Required {
			name := f.Name
			out = append(out, Case{Name: "missing " + f.Name, Field: f.Name, Body: strconv.Quote(e.body(func(g *genField) string {
				if g.Name == name {
					return ""
				}
				return g.SampleJSON
			}))})
		}
		if f.BadJSON != "" {
			name, bad := f.Name, f.BadJSON
			out = append(out, Case{Name: "bad " + f.Name, Field: f.Name, Body: strconv.Quote(e.body(func(g *genField) string {
				if g.Name == name {
					return bad
				}
				return g.SampleJSON
			}))})
		}
	}
	return out
}

// SampleChecks are the fields whose sample values the tests compare after a
// round trip, with the JSON of the value.
func (e *genEntity) SampleChecks() []Case {
	var out []Case
	for _, f := range e.Fields {
		if f.Type == "time" {
			continue // compared as instants elsewhere; the encoding may differ
		}
		out = append(out, Case{Field: f.Name, Body: strconv.Quote(f.SampleJSON)})
	}
	return out
}

// OtherChecks are SampleChecks for OtherBody.
func (e *genEntity) OtherChecks() []Case {
	var out []Case
	for _, f := range e.Fields {
		if f.Type == "time" {
			continue
		}
		out = append(out, Case{Field: f.Name, Body: strconv.Quote(f.OtherJSON)})
	}
	return out
}

// HasEvent reports whether the module emits event ev for the entity.
func (e *genEntity) HasEvent(ev string) bool { return slices.Contains(e.Events, ev) }

// EventTypes are the types the CRUD test produces, in order.
func (e *genEntity) EventTypes() string {
	var out []string
	for _, ev := range []string{"created", "updated", "deleted"} {
		if e.HasEvent(ev) {
			out = append(out, strconv.Quote(e.M.Module+"."+e.Name+"."+ev))
		}
	}
	return strings.Join(out, ", ")
}

// RoleFor is a role allowed action on the entity ("" when the module has no
// roles, or none is allowed).
func (e *genEntity) RoleFor(action string) string { return e.M.roleFor(e.Name, action) }

// RoleWithout is a role not allowed action on the entity ("" when every
// role is).
func (e *genEntity) RoleWithout(action string) string { return e.M.roleWithout(e.Name, action) }

// Usable reports whether some role may do action (always, without roles).
func (e *genEntity) Usable(action string) bool { return !e.M.HasRoles || e.RoleFor(action) != "" }

// ColumnList is the entity's columns as the handlers read them.
func (e *genEntity) ColumnList() string {
	cols := []string{`"` + e.Key + `"::text`}
	for _, f := range e.Fields {
		if f.SQLType == "uuid" {
			cols = append(cols, `"`+f.Name+`"::text`)
		} else {
			cols = append(cols, `"`+f.Name+`"`)
		}
	}
	return strings.Join(append(cols, "created_at", "updated_at"), ", ")
}

// param is placeholder n for field f.
func param(n int, f *genField) string {
	if f.SQLType == "uuid" {
		return "$" + strconv.Itoa(n) + "::text::uuid"
	}
	return "$" + strconv.Itoa(n)
}

// InsertSQL inserts a record (tenant $1, key $2, the fields from $3).
func (e *genEntity) InsertSQL() string {
	cols := []string{"tenant_id", `"` + e.Key + `"`}
	vals := []string{"$1::text::uuid", "$2::text::uuid"}
	for i, f := range e.Fields {
		cols = append(cols, `"`+f.Name+`"`)
		vals = append(vals, param(i+3, f))
	}
	return "INSERT INTO " + `"` + e.Plural + `"` + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ") RETURNING created_at, updated_at"
}

// UpdateSQL replaces a record's fields (tenant $1, key $2, fields from $3).
func (e *genEntity) UpdateSQL() string {
	var sets []string
	for i, f := range e.Fields {
		sets = append(sets, `"`+f.Name+`" = `+param(i+3, f))
	}
	sets = append(sets, "updated_at = now()")
	return `UPDATE "` + e.Plural + `" SET ` + strings.Join(sets, ", ") + ` WHERE tenant_id = $1::text::uuid AND "` + e.Key + `" = $2::text::uuid RETURNING ` + e.ColumnList()
}

// GetSQL reads one record.
func (e *genEntity) GetSQL() string {
	return "SELECT " + e.ColumnList() + ` FROM "` + e.Plural + `" WHERE tenant_id = $1::text::uuid AND "` + e.Key + `" = $2::text::uuid`
}

// ListSQL reads a page of records after a key.
func (e *genEntity) ListSQL() string {
	return "SELECT " + e.ColumnList() + ` FROM "` + e.Plural + `" WHERE tenant_id = $1::text::uuid AND ($2::text IS NULL OR "` +
		e.Key + `" > $2::text::uuid) ORDER BY "` + e.Key + `" LIMIT $3`
}

// DeleteSQL removes one record.
func (e *genEntity) DeleteSQL() string {
	return `DELETE FROM "` + e.Plural + `" WHERE tenant_id = $1::text::uuid AND "` + e.Key + `" = $2::text::uuid`
}

// ColumnDDL is the column definitions of the entity's table.
func (e *genEntity) ColumnDDL() []string {
	out := []string{`tenant_id uuid NOT NULL`, `"` + e.Key + `" uuid NOT NULL`}
	for _, f := range e.Fields {
		c := `"` + f.Name + `" ` + f.SQLType
		if f.Required {
			c += " NOT NULL"
		}
		switch {
		case f.Type == "enum":
			q := make([]string, len(f.Values))
			for i, v := range f.Values {
				q[i] = "'" + v + "'"
			}
			c += ` CHECK ("` + f.Name + `" IN (` + strings.Join(q, ", ") + `))`
		case f.MaxLength > 0 && f.SQLType == "text":
			c += ` CHECK (char_length("` + f.Name + `") <= ` + strconv.Itoa(f.MaxLength) + `)`
		}
		out = append(out, c)
	}
	return append(out, "created_at timestamptz NOT NULL DEFAULT now()", "updated_at timestamptz NOT NULL DEFAULT now()",
		`PRIMARY KEY (tenant_id, "`+e.Key+`")`)
}

// PersonalComments are COMMENT ON COLUMN statements recording each personal
// field's purpose and retention in the schema itself.
func (e *genEntity) PersonalComments() []string {
	var out []string
	for _, f := range e.Fields {
		if f.Personal() {
			text := strings.ReplaceAll(f.Classification+" data; purpose: "+f.Purpose+"; retention: "+f.Retention, "'", "''")
			out = append(out, `COMMENT ON COLUMN "`+e.Plural+`"."`+f.Name+`" IS '`+text+`';`)
		}
	}
	return out
}

// fieldSchema is the JSON Schema of a field's value.
func (f *genField) schema() map[string]any {
	s := map[string]any{}
	switch f.Type {
	case "string", "text":
		s["type"] = "string"
		if f.MaxLength > 0 {
			s["maxLength"] = f.MaxLength
		}
	case "email":
		s["type"], s["format"] = "string", "email"
	case "uuid":
		s["type"], s["format"] = "string", "uuid"
	case "enum":
		s["enum"] = f.Values
	case "integer", "number":
		s["type"] = f.Type
		if f.Minimum != nil {
			s["minimum"] = *f.Minimum
		}
		if f.Maximum != nil {
			s["maximum"] = *f.Maximum
		}
	case "boolean":
		s["type"] = "boolean"
	case "time":
		s["type"], s["format"] = "string", "date-time"
	}
	if f.Description != "" {
		s["description"] = f.Description
	}
	return s
}

// EventSchema is the JSON Schema of the data of the entity's event ev.
func (e *genEntity) EventSchema(ev string) string {
	typ := e.M.Module + "." + e.Name + "." + ev
	props := map[string]any{e.Key: map[string]any{"type": "string", "format": "uuid"}}
	required := []string{e.Key}
	desc := capitalize(article(e.Name)) + " of the " + e.M.Module + " module was " + ev + "."
	if ev != "deleted" {
		desc += " The data is the " + e.Name + " as the module stores it."
		for _, f := range e.Fields {
			props[f.Name] = f.schema()
			if f.Required {
				required = append(required, f.Name)
			}
		}
		props["created_at"] = map[string]any{"type": "string", "format": "date-time"}
		props["updated_at"] = map[string]any{"type": "string", "format": "date-time"}
		required = append(required, "created_at", "updated_at")
	} else {
		desc += " The data names it."
	}
	b, _ := json.Marshal(map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema", "title": typ, "description": desc,
		"type": "object", "required": required, "properties": props,
	})
	return string(b)
}

// personalFields are the entity's personal fields an event carries.
func (e *genEntity) personalFields(ev string) []*genField {
	if ev == "deleted" {
		return nil
	}
	var out []*genField
	for _, f := range e.Fields {
		if f.Personal() {
			out = append(out, f)
		}
	}
	return out
}

// Contract is the YAML contract of the entity's event ev: strong when it
// carries personal data (classified, with purpose and retention), standard
// otherwise.
func (e *genEntity) Contract(ev string) string {
	typ := e.M.Module + "." + e.Name + "." + ev
	personal := e.personalFields(ev)
	level := "standard"
	if len(personal) > 0 {
		level = "strong"
	}
	var b strings.Builder
	w := func(s string) { b.WriteString(s + "\n") }
	w("# Generated by PROST's factory from the " + e.M.Module + " module's Pack0.")
	w("type: " + typ)
	w("owner: " + e.M.Module)
	w("description: " + strconv.Quote(capitalize(article(e.Name))+" of the "+e.M.Module+" module was "+ev+"."))
	w("level: " + level)
	w("schema: urn:prost:schema:" + typ + ":1")
	w("compatibility: BACKWARD_TRANSITIVE")
	w("consumers: [tenant-subscribers]")
	w("delivery: at-least-once")
	w("ordered: true")
	w("partition_key: /" + e.Key)
	w("idempotency:")
	w("  key: [source, id]")
	w("retry:")
	w("  max_attempts: 10")
	w("  backoff: [1s, 5s, 30s, 2m]")
	w("dlq: true")
	if len(personal) > 0 {
		w("classification:")
		var purposes []string
		for _, f := range personal {
			w("  /" + f.Name + ": " + classification(f.Classification))
			purposes = append(purposes, f.Name+": "+f.Purpose)
		}
		w("data_subject: /" + e.Key + "   # each record is its data subject's")
		w("purpose: " + strconv.Quote(strings.Join(purposes, "; ")))
		w("retention: " + personal[0].Retention)
		w("audit: true")
	}
	return b.String()
}

func classification(c string) string {
	if c == "sensitive" {
		return "sensitive"
	}
	return "personal"
}

// article puts "a" or "an" before word.
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
