#include "io/pickle.h"

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "core/errors.h"

namespace pointnet {

namespace {

using Kind = PickleValue::Kind;

// Owns every value one unpickle() makes. A hostile pickle can build cycles
// (a list appended to itself through the memo) that shared_ptr alone would
// leak; the arena empties every container first, so all of them die with it.
struct PickleArena {
  std::vector<PickleRef> nodes;
  ~PickleArena() {
    for (PickleRef& n : nodes) {
      n->items.clear();
      n->dict.clear();
    }
  }
};

const char* const kStorageTypes[] = {"FloatStorage", "DoubleStorage", "HalfStorage",
                                     "BFloat16Storage", "LongStorage", "IntStorage"};

// The only globals a state_dict needs; anything else is refused by name.
bool allowed_global(const std::string& name) {
  if (name == "collections.OrderedDict" || name == "torch._utils._rebuild_tensor_v2" ||
      name == "torch._utils._rebuild_tensor" || name == "torch._utils._rebuild_parameter")
    return true;
  for (const char* type : kStorageTypes)
    if (name == std::string("torch.") + type) return true;
  return false;
}

class Unpickler {
 public:
  Unpickler(std::string_view bytes, const std::string& where, size_t start)
      : b_(bytes), where_(where), pos_(start) {}

  Unpickled run() {
    for (;;) {
      op_at_ = pos_;
      const unsigned char op = static_cast<unsigned char>(take(1)[0]);
      if (op == '.') {
        if (stack_.size() != 1 || !marks_.empty())
          error("STOP with ", stack_.size(), " values on the stack (expected 1): corrupt pickle");
        // The root keeps the arena (and so every value) alive: an aliasing pointer.
        return {PickleRef(arena_, stack_.back().get()), pos_};
      }
      step(op);
    }
  }

 private:
  PickleRef make(Kind kind) {
    auto v = std::make_shared<PickleValue>();
    v->kind = kind;
    arena_->nodes.push_back(v);
    return v;
  }

  template <typename... Parts>
  [[noreturn]] void error(const Parts&... parts) const {
    fail(where_, ": byte ", op_at_, ": ", parts...);
  }

  std::string_view take(uint64_t n) {
    if (n > b_.size() - pos_)
      error("pickle needs ", n, " more bytes but the data ends at byte ", b_.size(), ": truncated");
    const std::string_view s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t uint(int width) {
    const std::string_view s = take(width);
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[i]);
    return v;
  }
  std::string line() {
    const size_t nl = b_.find('\n', pos_);
    if (nl == std::string_view::npos) error("pickle text argument has no end of line: truncated");
    std::string s(b_.substr(pos_, nl - pos_));
    pos_ = nl + 1;
    return s;
  }

  PickleRef pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back()))
      error("pickle pops from an empty stack: corrupt pickle");
    PickleRef v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  PickleRef& top() {
    if (stack_.empty()) error("pickle reads an empty stack: corrupt pickle");
    return stack_.back();
  }
  // Everything since the last MARK, removing it and the mark.
  std::vector<PickleRef> pop_mark() {
    if (marks_.empty()) error("pickle has no MARK to pop to: corrupt pickle");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PickleRef> items(std::make_move_iterator(stack_.begin() + m), std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  void push(PickleRef v) { stack_.push_back(std::move(v)); }
  void push_int(int64_t v) {
    PickleRef r = make(Kind::Int);
    r->integer = v;
    push(r);
  }
  void push_text(Kind kind, std::string_view s) {
    PickleRef r = make(kind);
    r->text.assign(s);
    push(r);
  }
  void push_long(uint64_t n) {
    const std::string_view s = take(n);
    PickleRef r = make(Kind::Int);
    if (n > 8) {
      r->text.assign(s);  // too wide: kept as bytes (the legacy format's magic number is one)
    } else {
      uint64_t v = 0;
      for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(s[i]);
      if (n > 0 && n < 8 && (static_cast<unsigned char>(s[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);
      r->integer = static_cast<int64_t>(v);
    }
    push(r);
  }
  void push_tuple(std::vector<PickleRef> items) {
    PickleRef r = make(Kind::Tuple);
    r->items = std::move(items);
    push(r);
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  void memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) error("pickle refers to memo entry ", index, ", which was never stored: corrupt pickle");
    push(it->second);
  }
  void global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (!allowed_global(full))
      error("the pickle asks for the global '", full,
            "', which is not part of a state_dict; refusing it (this reader never runs code from a file: "
            "save the model's state_dict, torch.save(model.state_dict(), path), not the model)");
    push_text(Kind::Global, full);
  }
  PickleValue& container(PickleRef& v, Kind kind, const char* op) {
    if (v->kind != kind) error(op, " on a ", kind_name(v->kind), " (expected a ", kind_name(kind), "): corrupt pickle");
    return *v;
  }
  void set_items(PickleRef& dict, std::vector<PickleRef>& kv, const char* op) {
    if (kv.size() % 2) error(op, " with an odd number of keys and values: corrupt pickle");
    PickleValue& d = container(dict, Kind::Dict, op);
    for (size_t i = 0; i < kv.size(); i += 2) d.dict.emplace_back(std::move(kv[i]), std::move(kv[i + 1]));
  }

  int64_t int_arg(const PickleRef& v, const char* what) const {
    if (v->kind != Kind::Int || !v->text.empty()) error(what, " is a ", kind_name(v->kind), ", expected an int");
    return v->integer;
  }
  std::vector<int64_t> int_tuple(const PickleRef& v, const char* what) const {
    if (v->kind != Kind::Tuple && v->kind != Kind::List) error(what, " is a ", kind_name(v->kind), ", expected a tuple");
    std::vector<int64_t> out;
    for (const PickleRef& x : v->items) out.push_back(int_arg(x, what));
    return out;
  }

  // ('storage', torch.FloatStorage, key, location, numel[, view_metadata])
  PickleRef persistent(const PickleRef& pid) {
    const auto& t = pid->items;
    if (pid->kind != Kind::Tuple || t.size() < 5 || t[0]->kind != Kind::String || t[0]->text != "storage")
      error("persistent id is not a ('storage', type, key, location, numel) tuple: not a torch.save file?");
    if (t[1]->kind != Kind::Global) error("persistent id's storage type is a ", kind_name(t[1]->kind));
    PickleRef r = make(Kind::Storage);
    r->storage.type = t[1]->text.substr(6);  // after "torch."
    bool known = false;
    for (const char* type : kStorageTypes) known |= t[1]->text == std::string("torch.") + type;
    if (!known) error("persistent id's storage type '", t[1]->text, "' is not a storage type");
    if (t[2]->kind != Kind::String) error("persistent id's storage key is a ", kind_name(t[2]->kind));
    r->storage.key = t[2]->text;
    r->storage.numel = int_arg(t[4], "storage size");
    if (t.size() > 5 && t[5]->kind == Kind::Tuple) {  // legacy view: (view_key, offset, size)
      if (t[5]->items.size() != 3) error("storage view metadata is not (key, offset, size)");
      r->storage.view_offset = int_arg(t[5]->items[1], "storage view offset");
      r->storage.numel = int_arg(t[5]->items[2], "storage view size");
    }
    if (r->storage.numel < 0 || r->storage.view_offset < 0) error("storage has a negative size or offset");
    return r;
  }

  PickleRef reduce(const PickleRef& callable, const PickleRef& args) {
    if (callable->kind != Kind::Global) error("REDUCE calls a ", kind_name(callable->kind), ": corrupt pickle");
    if (args->kind != Kind::Tuple) error("REDUCE arguments are a ", kind_name(args->kind), ", expected a tuple");
    const std::string& f = callable->text;
    const auto& a = args->items;
    if (f == "collections.OrderedDict") {
      PickleRef d = make(Kind::Dict);
      if (a.empty()) return d;
      if (a.size() == 1 && a[0]->kind == Kind::List) {
        for (const PickleRef& pair : a[0]->items) {
          if ((pair->kind != Kind::Tuple && pair->kind != Kind::List) || pair->items.size() != 2)
            error("OrderedDict items are not (key, value) pairs");
          d->dict.emplace_back(pair->items[0], pair->items[1]);
        }
        return d;
      }
      error("OrderedDict called with unexpected arguments");
    }
    if (f == "torch._utils._rebuild_parameter") {
      if (a.size() < 1 || a[0]->kind != Kind::Tensor) error("_rebuild_parameter without a tensor");
      return a[0];
    }
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      const size_t want = f == "torch._utils._rebuild_tensor" ? 4 : 6;
      if (a.size() < want || a.size() > want + 1)
        error(f, " takes ", want, " arguments, the pickle gives ", a.size());
      if (a[0]->kind != Kind::Storage) error(f, ": its storage is a ", kind_name(a[0]->kind));
      PickleRef t = make(Kind::Tensor);
      t->tensor.storage = a[0]->storage;
      t->tensor.offset = int_arg(a[1], "tensor storage offset");
      t->tensor.sizes = int_tuple(a[2], "tensor size");
      t->tensor.strides = int_tuple(a[3], "tensor stride");
      if (t->tensor.sizes.size() != t->tensor.strides.size())
        error(f, ": ", t->tensor.sizes.size(), " sizes but ", t->tensor.strides.size(), " strides");
      return t;
    }
    error("the pickle calls '", f, "', which cannot be called here");
  }

  void step(unsigned char op) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t proto = uint(1);
        if (proto < 2 || proto > 5) error("pickle protocol ", proto, " is not supported (2..5)");
        return;
      }
      case 0x95: {  // FRAME: a length prefix only; the opcodes follow inline
        const uint64_t n = uint(8);
        if (n > b_.size() - pos_) error("pickle frame of ", n, " bytes runs past the end: truncated");
        return;
      }
      case '(': marks_.push_back(stack_.size()); return;
      case '0': pop(); return;
      case '1': pop_mark(); return;
      case '2': push(top()); return;
      case 'N': push(make(Kind::None)); return;
      case 0x88: case 0x89: {
        PickleRef r = make(Kind::Bool);
        r->boolean = op == 0x88;
        push(r);
        return;
      }
      case 'J': push_int(static_cast<int32_t>(uint(4))); return;
      case 'K': push_int(static_cast<int64_t>(uint(1))); return;
      case 'M': push_int(static_cast<int64_t>(uint(2))); return;
      case 0x8a: push_long(uint(1)); return;
      case 0x8b: push_long(uint(4)); return;
      case 'G': {  // BINFLOAT: the one big-endian value in a pickle
        uint64_t bits = 0;
        for (char c : take(8)) bits = (bits << 8) | static_cast<unsigned char>(c);
        PickleRef r = make(Kind::Float);
        std::memcpy(&r->real, &bits, 8);
        push(r);
        return;
      }
      case 'X': push_text(Kind::String, take(uint(4))); return;
      case 0x8c: push_text(Kind::String, take(uint(1))); return;
      case 0x8d: push_text(Kind::String, take(uint(8))); return;
      case 'T': push_text(Kind::String, take(uint(4))); return;  // Python 2 str
      case 'U': push_text(Kind::String, take(uint(1))); return;
      case 'B': push_text(Kind::Bytes, take(uint(4))); return;
      case 'C': push_text(Kind::Bytes, take(uint(1))); return;
      case 0x8e: push_text(Kind::Bytes, take(uint(8))); return;
      case ')': push_tuple({}); return;
      case 't': push_tuple(pop_mark()); return;
      case 0x85: case 0x86: case 0x87: {
        std::vector<PickleRef> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push_tuple(std::move(items));
        return;
      }
      case ']': push(make(Kind::List)); return;
      case 'l': {
        PickleRef r = make(Kind::List);
        r->items = pop_mark();
        push(r);
        return;
      }
      case 'a': {
        PickleRef v = pop();
        container(top(), Kind::List, "APPEND").items.push_back(std::move(v));
        return;
      }
      case 'e': {
        std::vector<PickleRef> items = pop_mark();
        auto& list = container(top(), Kind::List, "APPENDS").items;
        for (PickleRef& v : items) list.push_back(std::move(v));
        return;
      }
      case '}': push(make(Kind::Dict)); return;
      case 'd': {
        std::vector<PickleRef> kv = pop_mark();
        PickleRef d = make(Kind::Dict);
        set_items(d, kv, "DICT");
        push(d);
        return;
      }
      case 's': {
        std::vector<PickleRef> kv(2);
        kv[1] = pop();
        kv[0] = pop();
        set_items(top(), kv, "SETITEM");
        return;
      }
      case 'u': {
        std::vector<PickleRef> kv = pop_mark();
        set_items(top(), kv, "SETITEMS");
        return;
      }
      case 'q': memo_put(uint(1)); return;
      case 'r': memo_put(uint(4)); return;
      case 0x94: memo_put(memo_.size()); return;
      case 'h': memo_get(uint(1)); return;
      case 'j': memo_get(uint(4)); return;
      case 'c': {
        const std::string module = line();
        global(module, line());
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        PickleRef name = pop(), module = pop();
        if (module->kind != Kind::String || name->kind != Kind::String)
          error("STACK_GLOBAL needs two strings: corrupt pickle");
        global(module->text, name->text);
        return;
      }
      case 'R': {
        PickleRef args = pop(), callable = pop();
        push(reduce(callable, args));
        return;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only OrderedDict is allowed
        PickleRef args = pop(), cls = pop();
        if (cls->kind != Kind::Global || cls->text != "collections.OrderedDict")
          error("NEWOBJ of '", cls->text, "' is not supported");
        push(make(Kind::Dict));
        return;
      }
      case 'b': {  // BUILD: state for the object below; a state_dict's _metadata is dropped
        PickleRef state = pop();
        if (top()->kind != Kind::Dict)
          error("BUILD (setting object state) on a ", kind_name(top()->kind), " is not supported");
        return;
      }
      case 'Q': push(persistent(pop())); return;
      default: break;
    }
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", op);
    error("pickle opcode ", hex, (op >= 0x20 && op < 0x7f ? std::string(" '") + char(op) + "'" : std::string()),
          " is not supported by this reader (it reads what torch.save writes)");
  }

  std::string_view b_;
  const std::string& where_;
  size_t pos_, op_at_ = 0;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleRef> memo_;
  std::shared_ptr<PickleArena> arena_ = std::make_shared<PickleArena>();
};

}  // namespace

PickleValue::~PickleValue() {
  std::vector<PickleRef> pending;
  auto adopt = [&pending](PickleValue& v) {
    for (PickleRef& c : v.items) pending.push_back(std::move(c));
    for (auto& kv : v.dict) {
      pending.push_back(std::move(kv.first));
      pending.push_back(std::move(kv.second));
    }
    v.items.clear();
    v.dict.clear();
  };
  adopt(*this);
  while (!pending.empty()) {
    PickleRef r = std::move(pending.back());
    pending.pop_back();
    if (r && r.use_count() == 1) adopt(*r);  // r then dies childless: no recursion
  }
}

const PickleValue* PickleValue::get(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  for (const auto& [k, v] : dict)
    if (k->kind == Kind::String && k->text == key) return v.get();
  return nullptr;
}

const char* kind_name(PickleValue::Kind kind) {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

Unpickled unpickle(std::string_view bytes, const std::string& where, size_t start) {
  if (start > bytes.size()) fail(where, ": byte ", start, ": pickle starts past the end of the data");
  return Unpickler(bytes, where, start).run();
}

}  // namespace pointnet
