package schemacompat

import "fmt"

// arrayView normalizes the item keywords of both drafts: a tuple (2020-12
// prefixItems or draft-07 items array), the rest (2020-12 items next to
// prefixItems, draft-07 additionalItems, or a single items schema).
type arrayView struct {
	tuple    []any
	tupleKW  string
	hasTuple bool
	rest     slot
	restKW   string
}

func arrayViewOf(n node) arrayView {
	if l, ok := n.m["prefixItems"].([]any); ok {
		v := arrayView{tuple: l, tupleKW: "prefixItems", hasTuple: true, restKW: "items"}
		if _, isList := n.m["items"].([]any); !isList {
			v.rest = slotOf(n, "items")
		}
		return v
	}
	if l, ok := n.m["items"].([]any); ok {
		return arrayView{tuple: l, tupleKW: "items", hasTuple: true, rest: slotOf(n, "additionalItems"), restKW: "additionalItems"}
	}
	return arrayView{rest: slotOf(n, "items"), restKW: "items", tupleKW: "prefixItems"}
}

func (c *comparer) compareArrays(a, b node, out *diffs) {
	va, vb := arrayViewOf(a), arrayViewOf(b)
	ua, ub := slotOf(a, "unevaluatedItems"), slotOf(b, "unevaluatedItems")

	if !va.hasTuple && !vb.hasTuple {
		// One schema for every item (Confluent's "all item schema").
		switch {
		case va.rest.kind == slotOpen && vb.rest.kind == slotOpen:
		case va.rest.kind == slotOpen:
			out.add(SchemaAdded, "/items", "items schema added: every item must now match it")
		case vb.rest.kind == slotOpen:
			out.add(SchemaRemoved, "/items", "items schema removed: items may be anything")
		default:
			out.nest("/items", c.compare(va.rest.s, vb.rest.s))
		}
	} else {
		c.compareTuples(a, b, va, vb, ua, ub, out)
		c.compareSlot("/"+vb.restKW, vb.restKW, va.rest, vb.rest, additionalItemsKinds, out)
	}
	c.compareSlot("/unevaluatedItems", "unevaluatedItems", ua, ub, unevaluatedItemsKinds, out)

	sa, oka := a.sub("contains")
	sb, okb := b.sub("contains")
	switch {
	case !oka && !okb:
	case !oka:
		out.add(SchemaAdded, "/contains", "contains added: arrays must now hold a matching item")
	case !okb:
		out.add(SchemaRemoved, "/contains", "contains removed")
	default:
		out.nest("/contains", c.compare(sa, sb))
	}

	out.bound("maxItems", keywordNumber(a, "maxItems"), keywordNumber(b, "maxItems"), maxItemsKinds)
	out.bound("minItems", keywordNumber(a, "minItems"), keywordNumber(b, "minItems"), minItemsKinds)
	out.bound("maxContains", keywordNumber(a, "maxContains"), keywordNumber(b, "maxContains"), maxContainsKinds)
	out.bound("minContains", keywordNumber(a, "minContains"), keywordNumber(b, "minContains"), minContainsKinds)

	uqa, _ := a.m["uniqueItems"].(bool)
	uqb, _ := b.m["uniqueItems"].(bool)
	switch {
	case uqa == uqb:
	case uqb:
		out.add(UniqueItemsAdded, "/uniqueItems", "items must now be unique")
	default:
		out.add(UniqueItemsRemoved, "/uniqueItems", "items no longer need to be unique")
	}
}

// compareTuples compares tuple positions pairwise; extra positions are
// judged by the other side's array content model.
func (c *comparer) compareTuples(a, b node, va, vb arrayView, ua, ub slot, out *diffs) {
	common := min(len(va.tuple), len(vb.tuple))
	for i := range common {
		pa := fmt.Sprintf("/%s/%d", va.tupleKW, i)
		pb := fmt.Sprintf("/%s/%d", vb.tupleKW, i)
		out.nest(pb, c.compare(a.child(va.tuple[i], pa), b.child(vb.tuple[i], pb)))
	}
	restB := restOf(vb.rest, vb.restKW, ub, "unevaluatedItems")
	for i := common; i < len(va.tuple); i++ {
		ptr := fmt.Sprintf("/%s/%d", va.tupleKW, i)
		p := a.child(va.tuple[i], ptr)
		switch restB.kind {
		case slotOpen:
			out.add(ItemRemovedFromOpenContentModel, ptr, "tuple item %d removed; the new open array content model accepts any value there", i)
		case slotFalse:
			if p.isFalse {
				out.add(ItemWithFalseRemovedFromClosedContentModel, ptr, "tuple item %d, which was false, removed from a closed array content model", i)
			} else {
				out.add(ItemRemovedFromClosedContentModel, ptr, "tuple item %d removed and the new %s is false: arrays that long are rejected", i, restB.via)
			}
		default:
			if ds, ok := c.probe(p, restB.schemas[0]); ok {
				out.add(ItemRemovedIsCoveredByPartiallyOpenContentModel, ptr, "tuple item %d removed; its values are accepted by the new %s", i, restB.via)
			} else {
				out.add(ItemRemovedNotCoveredByPartiallyOpenContentModel, ptr, "tuple item %d removed; the new %s rejects some of its values (%s)", i, restB.via, summarize(ds))
			}
		}
	}
	restA := restOf(va.rest, va.restKW, ua, "unevaluatedItems")
	for i := common; i < len(vb.tuple); i++ {
		ptr := fmt.Sprintf("/%s/%d", vb.tupleKW, i)
		q := b.child(vb.tuple[i], ptr)
		switch restA.kind {
		case slotOpen:
			if q.isEmpty() {
				out.add(ItemWithEmptySchemaAddedToOpenContentModel, ptr, "tuple item %d with an empty schema added to an open array content model", i)
			} else {
				out.add(ItemAddedToOpenContentModel, ptr, "tuple item %d added to an open array content model: old data may hold other values there", i)
			}
		case slotFalse:
			out.add(ItemAddedToClosedContentModel, ptr, "tuple item %d added to a closed array content model", i)
		default:
			if ds, ok := c.probe(restA.schemas[0], q); ok {
				out.add(ItemAddedIsCoveredByPartiallyOpenContentModel, ptr, "tuple item %d added; it accepts the values the previous %s accepted", i, restA.via)
			} else {
				out.add(ItemAddedNotCoveredByPartiallyOpenContentModel, ptr, "tuple item %d added; it rejects values the previous %s accepted (%s)", i, restA.via, summarize(ds))
			}
		}
	}
}
