package decode

// A JCEKS secret-key entry is a Java-serialized object (a SealedObject)
// written straight into the keystore, with no length before it: the only way
// to the next entry is through the object. skipJavaObject walks one
// serialization stream (the Java Object Serialization Stream Protocol)
// without building anything but the class descriptors it needs to know how
// long an instance is. It is bounded against hostile input: every length is
// checked against what is left, nesting and class hierarchies are capped, and
// every step consumes input, so the work is linear in the data.

const (
	javaStreamMagic   = 0xaced
	javaStreamVersion = 5
	javaBaseHandle    = 0x7e0000

	tcNull           = 0x70
	tcReference      = 0x71
	tcClassDesc      = 0x72
	tcObject         = 0x73
	tcString         = 0x74
	tcArray          = 0x75
	tcClass          = 0x76
	tcBlockData      = 0x77
	tcEndBlockData   = 0x78
	tcReset          = 0x79
	tcBlockDataLong  = 0x7a
	tcLongString     = 0x7c
	tcProxyClassDesc = 0x7d
	tcEnum           = 0x7e

	scWriteMethod    = 0x01
	scSerializable   = 0x02
	scExternalizable = 0x04
	scBlockData      = 0x08

	// A sealed key nests two or three levels and has a two-class
	// hierarchy; these caps leave room and stop a stack or CPU exhaustion.
	maxJavaDepth     = 32
	maxJavaHierarchy = 16
	maxJavaHandles   = 1 << 14
)

// javaClass is what an instance's layout depends on.
type javaClass struct {
	flags  byte
	fields []byte // type codes: B C D F I J S Z for primitives, L and [ for objects
	super  *javaClass
	depth  int  // classes in the hierarchy, this one included
	elem   byte // for an array class ("[X..."), X
}

type javaStream struct {
	r       *jksReader
	handles []*javaClass // nil for handles that are not class descriptors
	depth   int
}

// skipJavaObject consumes a stream header and one object from r, or sets
// r.err.
func skipJavaObject(r *jksReader) {
	if r.u16() != javaStreamMagic || r.u16() != javaStreamVersion {
		r.fail("secret key entry: not a Java serialization stream")
		return
	}
	s := &javaStream{r: r}
	s.object()
}

func (s *javaStream) enter() bool {
	s.depth++
	if s.depth > maxJavaDepth {
		s.r.fail("secret key entry: nested too deeply")
		return false
	}
	return s.r.err == nil
}

func (s *javaStream) leave() { s.depth-- }

func (s *javaStream) newHandle(c *javaClass) {
	if len(s.handles) >= maxJavaHandles {
		s.r.fail("secret key entry: too many objects")
		return
	}
	s.handles = append(s.handles, c)
}

// reference reads a handle and returns what it refers to (nil for a
// non-class); ok is false when the handle was never assigned.
func (s *javaStream) reference() (c *javaClass, ok bool) {
	h := s.r.u32()
	if s.r.err != nil {
		return nil, false
	}
	i := int64(h) - javaBaseHandle
	if i < 0 || i >= int64(len(s.handles)) {
		s.r.fail("secret key entry: reference to an unknown object")
		return nil, false
	}
	return s.handles[i], true
}

// object consumes one content item that is an object (or null, or a
// reference).
func (s *javaStream) object() {
	if !s.enter() {
		return
	}
	defer s.leave()
	for s.r.err == nil {
		switch tc := s.r.u8(); tc {
		case tcReset:
			s.handles = s.handles[:0]
			continue // a reset precedes the object
		case tcNull:
		case tcReference:
			s.reference()
		case tcString:
			s.newHandle(nil)
			s.r.skip(int(s.r.u16()))
		case tcLongString:
			s.newHandle(nil)
			s.skip64(s.r.u64())
		case tcClassDesc, tcProxyClassDesc:
			s.classDescAfter(tc)
		case tcClass:
			s.classDesc()
			s.newHandle(nil)
		case tcEnum:
			s.classDesc()
			s.newHandle(nil)
			s.object() // the constant's name
		case tcArray:
			c := s.classDesc()
			s.newHandle(nil)
			s.array(c, s.r.u32())
		case tcObject:
			c := s.classDesc()
			s.newHandle(nil)
			s.instance(c)
		default:
			if s.r.err == nil {
				s.r.fail("secret key entry: unexpected stream element 0x%02x", tc)
			}
		}
		return
	}
}

func (s *javaStream) skip64(n uint64) {
	if n > uint64(len(s.r.b)) {
		s.r.fail("truncated or malformed")
		return
	}
	s.r.skip(int(n))
}

// classDesc consumes a class descriptor: a new one, a reference to one, or
// null.
func (s *javaStream) classDesc() *javaClass {
	switch tc := s.r.u8(); tc {
	case tcNull:
		return nil
	case tcReference:
		c, ok := s.reference()
		if ok && c == nil {
			s.r.fail("secret key entry: a reference to an object where a class was expected")
		}
		return c
	case tcClassDesc, tcProxyClassDesc:
		return s.classDescAfter(tc)
	default:
		s.r.fail("secret key entry: unexpected stream element 0x%02x where a class was expected", tc)
		return nil
	}
}

// classDescAfter reads a class descriptor whose tag was just read.
func (s *javaStream) classDescAfter(tc byte) *javaClass {
	if !s.enter() {
		return nil
	}
	defer s.leave()
	c := &javaClass{}
	if tc == tcProxyClassDesc {
		s.newHandle(c)
		c.flags = scSerializable
		n := s.r.u32()
		if uint64(n)*2 > uint64(len(s.r.b)) { // each interface name takes at least its length
			s.r.fail("truncated or malformed")
			return nil
		}
		for i := uint32(0); i < n && s.r.err == nil; i++ {
			s.r.skip(int(s.r.u16()))
		}
	} else {
		name := s.r.take(int(s.r.u16()))
		s.r.skip(8) // serialVersionUID
		s.newHandle(c)
		c.flags = s.r.u8()
		if len(name) > 1 && name[0] == '[' {
			c.elem = name[1]
		}
		n := int(s.r.u16())
		if n*3 > len(s.r.b) { // each field takes a type code and a name length at least
			s.r.fail("truncated or malformed")
			return nil
		}
		c.fields = make([]byte, 0, n)
		for i := 0; i < n && s.r.err == nil; i++ {
			typ := s.r.u8()
			s.r.skip(int(s.r.u16())) // field name
			switch {
			case typ == 'L' || typ == '[':
				s.object() // the field's class name, a string
			case primitiveWidth(typ) == 0:
				s.r.fail("secret key entry: unknown field type 0x%02x", typ)
			}
			c.fields = append(c.fields, typ)
		}
	}
	s.annotation()
	c.super = s.classDesc()
	c.depth = 1
	if c.super != nil {
		c.depth += c.super.depth
	}
	if c.depth > maxJavaHierarchy {
		s.r.fail("secret key entry: class hierarchy too deep")
	}
	if s.r.err != nil {
		return nil
	}
	return c
}

// annotation consumes block data and objects up to the end-of-block marker.
func (s *javaStream) annotation() {
	for s.r.err == nil {
		if len(s.r.b) == 0 {
			s.r.fail("truncated or malformed")
			return
		}
		switch s.r.b[0] {
		case tcEndBlockData:
			s.r.skip(1)
			return
		case tcBlockData:
			s.r.skip(1)
			s.r.skip(int(s.r.u8()))
		case tcBlockDataLong:
			s.r.skip(1)
			s.r.skip(int(s.r.u32()))
		default:
			s.object()
		}
	}
}

// instance consumes the data of an object of class c: each class's fields,
// from the top of the hierarchy down, and what custom writers added.
func (s *javaStream) instance(c *javaClass) {
	if c == nil {
		s.r.fail("secret key entry: an object without a class")
		return
	}
	var chain [maxJavaHierarchy]*javaClass
	n := 0
	for k := c; k != nil && n < len(chain); k = k.super {
		chain[n] = k
		n++
	}
	for i := n - 1; i >= 0 && s.r.err == nil; i-- {
		k := chain[i]
		switch {
		case k.flags&scSerializable != 0:
			for _, typ := range k.fields {
				if w := primitiveWidth(typ); w > 0 {
					s.r.skip(w)
				} else {
					s.object()
				}
			}
			if k.flags&scWriteMethod != 0 {
				s.annotation()
			}
		case k.flags&scExternalizable != 0 && k.flags&scBlockData != 0:
			s.annotation()
		default:
			s.r.fail("secret key entry: an object whose layout cannot be known")
		}
	}
}

// array consumes n elements of an array of class c.
func (s *javaStream) array(c *javaClass, n uint32) {
	if c == nil || c.elem == 0 {
		s.r.fail("secret key entry: an array without an array class")
		return
	}
	if w := primitiveWidth(c.elem); w > 0 {
		s.skip64(uint64(n) * uint64(w))
		return
	}
	if uint64(n) > uint64(len(s.r.b)) { // every element takes a byte at least
		s.r.fail("truncated or malformed")
		return
	}
	for i := uint32(0); i < n && s.r.err == nil; i++ {
		s.object()
	}
}

// primitiveWidth is the encoded size of a primitive type code, 0 for others.
func primitiveWidth(typ byte) int {
	switch typ {
	case 'B', 'Z':
		return 1
	case 'C', 'S':
		return 2
	case 'I', 'F':
		return 4
	case 'J', 'D':
		return 8
	}
	return 0
}
