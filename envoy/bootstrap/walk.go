package bootstrap

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
)

// node is one message found in the bootstrap, including Any payloads, with its field path.
type node struct {
	path string
	msg  proto.Message
}

// tree is the result of one reflective walk over a bootstrap.
type tree struct {
	nodes    []node
	problems []error
	warnings []string
}

// validator is what protoc-gen-validate generates on every Envoy message.
type validator interface{ ValidateAll() error }

const anyName protoreflect.FullName = "google.protobuf.Any"

// walk visits m and every message below it. An Any is unpacked and its payload validated as a new
// root, because the generated ValidateAll of the enclosing message stops at the Any.
func (t *tree) walk(path string, m protoreflect.Message) {
	if m.Descriptor().FullName() == anyName {
		t.unpack(path, m)
		return
	}
	t.nodes = append(t.nodes, node{path: path, msg: m.Interface()})
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := join(path, string(fd.Name()))
		t.deprecated(p, fd, v)
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				if fd.Message() != nil {
					t.walk(p+index(i, l.Get(i).Message()), l.Get(i).Message())
				}
			}
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				break
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				t.walk(p+"["+strconv.Quote(k.String())+"]", mv.Message())
				return true
			})
		case fd.Message() != nil:
			t.walk(p, v.Message())
		}
		return true
	})
}

func (t *tree) unpack(path string, m protoreflect.Message) {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		// A dynamic Any (not the generated type): copy it into one.
		a = &anypb.Any{}
		raw, err := proto.Marshal(m.Interface())
		if err == nil {
			err = proto.Unmarshal(raw, a)
		}
		if err != nil {
			t.problems = append(t.problems, fmt.Errorf("%s: read Any: %w", orRoot(path), err))
			return
		}
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		t.problems = append(t.problems, fmt.Errorf("%s: unpack %s: %w", orRoot(path), a.GetTypeUrl(), err))
		return
	}
	name := inner.ProtoReflect().Descriptor().FullName()
	if v, ok := inner.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			t.problems = append(t.problems, fmt.Errorf("%s (%s): %w", orRoot(path), name, err))
		}
	} else {
		// Fail closed: a payload without PGV rules is not an Envoy extension we know how to check.
		t.problems = append(t.problems, fmt.Errorf("%s (%s): type has no validation rules", orRoot(path), name))
	}
	t.walk(path, inner.ProtoReflect())
}

// deprecated records a warning for a set field, or enum value, marked deprecated in its .proto.
func (t *tree) deprecated(path string, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	if o, ok := fd.Options().(*descriptorpb.FieldOptions); ok && o.GetDeprecated() {
		t.warnings = append(t.warnings, path+": deprecated field")
	}
	if fd.IsMap() || fd.Kind() != protoreflect.EnumKind {
		return // map values are never enums in Envoy's API
	}
	check := func(p string, n protoreflect.EnumNumber) {
		ev := fd.Enum().Values().ByNumber(n)
		if ev == nil {
			return
		}
		if o, ok := ev.Options().(*descriptorpb.EnumValueOptions); ok && o.GetDeprecated() {
			t.warnings = append(t.warnings, fmt.Sprintf("%s: deprecated value %s", p, ev.Name()))
		}
	}
	switch {
	case fd.IsList():
		for i := range v.List().Len() {
			check(path+"["+strconv.Itoa(i)+"]", v.List().Get(i).Enum())
		}
	default:
		check(path, v.Enum())
	}
}

// index renders a list index, with the element's name when it has one, e.g. clusters[1](mcp_upstream).
func index(i int, m protoreflect.Message) string {
	s := "[" + strconv.Itoa(i) + "]"
	if fd := m.Descriptor().Fields().ByName("name"); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
		if n := m.Get(fd).String(); n != "" {
			s += "(" + n + ")"
		}
	}
	return s
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func orRoot(path string) string {
	if path == "" {
		return "bootstrap"
	}
	return path
}
