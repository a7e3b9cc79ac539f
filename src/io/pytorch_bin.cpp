#include "io/pytorch_bin.h"

#include <ATen/ATen.h>

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>

#include "openrm/error.h"

namespace openrm {

namespace {

// ---- values the restricted unpickler builds ---------------------------------------

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct StorageRef {
  DType dtype = DType::F32;
  std::string key;
  std::int64_t numel = 0;
};

struct TensorRef {
  StorageRef storage;
  std::int64_t offset = 0;
  std::vector<std::int64_t> size, stride;
};

struct Value {
  enum Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorageType, kStorage, kTensor, kMark };
  Kind kind = kNone;
  std::int64_t integer = 0;
  double number = 0;
  std::string text;  // string, global name
  DType dtype = DType::F32;  // storage type
  std::vector<ValuePtr> items;  // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;
  StorageRef storage;
  TensorRef tensor;
};

// Owns every value the unpicklers of one file build. Containers hold their
// items by shared_ptr, so a hostile pickle could nest a million tuples (one
// byte each: TUPLE1) and make the recursive destructor overflow the stack, or
// make a list that holds itself (through the memo) and leak. Every value is
// also kept here, and the destructor first empties every container: then no
// value's destruction reaches another, and cycles are broken.
class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() {
    for (const ValuePtr& v : values_) {
      v->items.clear();
      v->dict.clear();
    }
  }
  ValuePtr make(Value::Kind kind) {
    auto v = std::make_shared<Value>();
    v->kind = kind;
    values_.push_back(v);
    return v;
  }

 private:
  std::vector<ValuePtr> values_;
};

// The storage classes torch.save names, and the dtype each holds.
bool storage_dtype(const std::string& name, DType* out) {
  static const std::map<std::string, DType> kTypes = {
      {"torch.FloatStorage", DType::F32},  {"torch.DoubleStorage", DType::F64}, {"torch.HalfStorage", DType::F16},
      {"torch.BFloat16Storage", DType::BF16}, {"torch.LongStorage", DType::I64}, {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16},  {"torch.CharStorage", DType::I8},    {"torch.ByteStorage", DType::U8},
      {"torch.BoolStorage", DType::BOOL}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) return false;
  *out = it->second;
  return true;
}

// The callables a state dict's pickle may name. _rebuild_tensor is what
// torch before 1.0 wrote in place of _rebuild_tensor_v2.
bool allowed_callable(const std::string& name) {
  return name == "collections.OrderedDict" || name == "torch._utils._rebuild_tensor_v2" ||
         name == "torch._utils._rebuild_tensor" || name == "torch._utils._rebuild_parameter" ||
         name == "torch._utils._rebuild_parameter_with_state";
}

class Unpickler {
 public:
  // `persistent` turns a persistent id into a storage. Errors read
  // "<where>: byte <base + offset>: ...".
  Unpickler(Arena& arena, const std::uint8_t* data, std::size_t size, std::string where,
            std::function<StorageRef(const Value&)> persistent, std::size_t base = 0)
      : arena_(arena), p_(data), size_(size), base_(base), where_(std::move(where)),
        persistent_(std::move(persistent)) {}

  std::size_t consumed() const { return pos_; }

  ValuePtr load() {
    while (true) {
      const std::size_t at = pos_;
      const std::uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;          // PROTO
        case 0x95: bytes(8); break;        // FRAME
        case '.': {                         // STOP
          if (stack_.size() != 1) fail(at, "STOP with " + std::to_string(stack_.size()) + " values on the stack");
          return pop(at);
        }
        case '(': stack_.push_back(make(Value::kMark)); break;
        case '}': stack_.push_back(make(Value::kDict)); break;
        case ']': stack_.push_back(make(Value::kList)); break;
        case ')': stack_.push_back(make(Value::kTuple)); break;
        case 't': {
          auto t = make(Value::kTuple);
          t->items = pop_to_mark(at);
          stack_.push_back(t);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          const std::size_t n = op - 0x84;
          if (stack_.size() < n) fail(at, "TUPLE" + std::to_string(n) + " on a short stack");
          auto t = make(Value::kTuple);
          t->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          for (const auto& item : t->items) check_not_mark(item, at);
          stack_.push_back(t);
          break;
        }
        case 'X': push_string(at, le(4)); break;     // BINUNICODE
        case 0x8c: push_string(at, le(1)); break;    // SHORT_BINUNICODE
        case 0x8d: push_string(at, le(8)); break;    // BINUNICODE8
        case 'C': push_string(at, le(1)); break;     // SHORT_BINBYTES (kept as text)
        case 'B': push_string(at, le(4)); break;     // BINBYTES
        case 'U': push_string(at, le(1)); break;     // SHORT_BINSTRING
        case 'J': {                                  // BININT
          auto v = make(Value::kInt);
          v->integer = static_cast<std::int32_t>(static_cast<std::uint32_t>(le(4)));
          stack_.push_back(v);
          break;
        }
        case 'K': push_int(static_cast<std::int64_t>(le(1))); break;  // BININT1
        case 'M': push_int(static_cast<std::int64_t>(le(2))); break;  // BININT2
        case 0x8a: {                                                  // LONG1
          const std::size_t n = le(1);
          const std::uint8_t* b = bytes(n);
          if (n > 8) {  // only the legacy format's magic number is this wide: kept as its bytes
            auto v = make(Value::kInt);
            v->text.assign(reinterpret_cast<const char*>(b), n);
            stack_.push_back(v);
            break;
          }
          std::uint64_t u = 0;
          for (std::size_t i = 0; i < n; ++i) u |= static_cast<std::uint64_t>(b[i]) << (8 * i);
          if (n > 0 && n < 8 && (b[n - 1] & 0x80)) u |= ~std::uint64_t{0} << (8 * n);  // sign-extend
          push_int(static_cast<std::int64_t>(u));
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          const std::uint8_t* b = bytes(8);
          std::uint64_t u = 0;
          for (int i = 0; i < 8; ++i) u = (u << 8) | b[i];
          auto v = make(Value::kFloat);
          std::memcpy(&v->number, &u, 8);
          stack_.push_back(v);
          break;
        }
        case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
          auto v = make(Value::kBool);
          v->integer = op == 0x88;
          stack_.push_back(v);
          break;
        }
        case 'N': stack_.push_back(make(Value::kNone)); break;
        case 'c': {  // GLOBAL module\nname\n
          std::string module = line(at), name = line(at);
          push_global(at, module + "." + name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(at), module = pop(at);
          if (name->kind != Value::kString || module->kind != Value::kString) fail(at, "STACK_GLOBAL without names");
          push_global(at, module->text + "." + name->text);
          break;
        }
        case 'R': {  // REDUCE
          auto args = pop(at), callable = pop(at);
          if (callable->kind != Value::kGlobal || args->kind != Value::kTuple) fail(at, "REDUCE on something not callable");
          stack_.push_back(call(at, callable->text, args->items));
          break;
        }
        case 'b': {  // BUILD: the state of an OrderedDict (its _metadata) is not needed
          pop(at);
          if (stack_.empty()) fail(at, "BUILD on an empty stack");
          break;
        }
        case 'Q': {  // BINPERSID
          auto id = pop(at);
          auto v = make(Value::kStorage);
          v->storage = persistent_(*id);
          stack_.push_back(v);
          break;
        }
        case 's': {  // SETITEM
          auto value = pop(at), key = pop(at);
          dict_at_top(at)->dict.emplace_back(key, value);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = pop_to_mark(at);
          if (items.size() % 2 != 0) fail(at, "SETITEMS with an odd number of values");
          auto d = dict_at_top(at);
          for (std::size_t i = 0; i < items.size(); i += 2) d->dict.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'a': {  // APPEND
          auto value = pop(at);
          list_at_top(at)->items.push_back(value);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_to_mark(at);
          auto l = list_at_top(at);
          l->items.insert(l->items.end(), items.begin(), items.end());
          break;
        }
        case 'q': memo(at, le(1)); break;     // BINPUT
        case 'r': memo(at, le(4)); break;     // LONG_BINPUT
        case 0x94: memo(at, memo_.size()); break;  // MEMOIZE
        case 'h': get(at, le(1)); break;      // BINGET
        case 'j': get(at, le(4)); break;      // LONG_BINGET
        default: {
          char text[96];
          std::snprintf(text, sizeof text, "unsupported pickle opcode 0x%02x", op);
          fail(at, text);
        }
      }
    }
  }

 private:
  ValuePtr make(Value::Kind kind) { return arena_.make(kind); }
  [[noreturn]] void fail(std::size_t at, const std::string& problem) const {
    throw Error(where_ + ": byte " + std::to_string(base_ + at) + ": " + problem);
  }
  std::uint8_t byte() {
    if (pos_ >= size_) fail(pos_, "the pickle ends early (truncated file?)");
    return p_[pos_++];
  }
  const std::uint8_t* bytes(std::size_t n) {
    if (n > size_ - pos_) fail(pos_, "the pickle ends early (truncated file?)");
    const std::uint8_t* b = p_ + pos_;
    pos_ += n;
    return b;
  }
  std::uint64_t le(std::size_t n) {
    const std::uint8_t* b = bytes(n);
    std::uint64_t u = 0;
    for (std::size_t i = 0; i < n; ++i) u |= static_cast<std::uint64_t>(b[i]) << (8 * i);
    return u;
  }
  std::string line(std::size_t at) {
    std::string out;
    while (true) {
      const char c = static_cast<char>(byte());
      if (c == '\n') return out;
      out += c;
      if (out.size() > 256) fail(at, "GLOBAL name longer than 256 bytes");
    }
  }
  void push_string(std::size_t at, std::uint64_t n) {
    if (n > size_ - pos_) fail(at, "a string of " + std::to_string(n) + " bytes runs past the end of the pickle");
    auto v = make(Value::kString);
    const std::uint8_t* b = bytes(static_cast<std::size_t>(n));
    v->text.assign(reinterpret_cast<const char*>(b), static_cast<std::size_t>(n));
    stack_.push_back(v);
  }
  void push_int(std::int64_t i) {
    auto v = make(Value::kInt);
    v->integer = i;
    stack_.push_back(v);
  }
  void push_global(std::size_t at, const std::string& name) {
    DType dtype;
    if (storage_dtype(name, &dtype)) {
      auto v = make(Value::kStorageType);
      v->dtype = dtype;
      v->text = name;
      stack_.push_back(v);
      return;
    }
    if (!allowed_callable(name)) {
      fail(at, "refusing pickle global '" + name +
                   "' (only tensors and the containers torch.save writes for a state dict are accepted; "
                   "no pickled code is run)");
    }
    auto v = make(Value::kGlobal);
    v->text = name;
    stack_.push_back(v);
  }
  void check_not_mark(const ValuePtr& v, std::size_t at) const {
    if (v->kind == Value::kMark) fail(at, "a MARK where a value was expected");
  }
  ValuePtr pop(std::size_t at) {
    if (stack_.empty()) fail(at, "the pickle pops an empty stack");
    auto v = stack_.back();
    stack_.pop_back();
    check_not_mark(v, at);
    return v;
  }
  std::vector<ValuePtr> pop_to_mark(std::size_t at) {
    std::size_t i = stack_.size();
    while (i > 0 && stack_[i - 1]->kind != Value::kMark) --i;
    if (i == 0) fail(at, "no MARK on the stack");
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(i), stack_.end());
    stack_.resize(i - 1);
    return items;
  }
  ValuePtr dict_at_top(std::size_t at) {
    if (stack_.empty() || stack_.back()->kind != Value::kDict) fail(at, "SETITEM(S) on something not a dict");
    return stack_.back();
  }
  ValuePtr list_at_top(std::size_t at) {
    if (stack_.empty() || stack_.back()->kind != Value::kList) fail(at, "APPEND(S) on something not a list");
    return stack_.back();
  }
  void memo(std::size_t at, std::uint64_t index) {
    if (stack_.empty()) fail(at, "memoising an empty stack");
    // A pickle stores at most one memo entry per opcode, so an index past its
    // length is hostile; without this bound 5 bytes could demand gigabytes.
    if (index > size_) fail(at, "memo index " + std::to_string(index) + " is implausibly large");
    if (index >= memo_.size()) memo_.resize(static_cast<std::size_t>(index) + 1);
    memo_[static_cast<std::size_t>(index)] = stack_.back();
  }
  void get(std::size_t at, std::uint64_t index) {
    if (index >= memo_.size() || !memo_[static_cast<std::size_t>(index)]) {
      fail(at, "memo index " + std::to_string(index) + " was never stored");
    }
    stack_.push_back(memo_[static_cast<std::size_t>(index)]);
  }
  std::vector<std::int64_t> int_tuple(std::size_t at, const ValuePtr& v, const char* what) const {
    if (v->kind != Value::kTuple) fail(at, std::string("tensor ") + what + ": expected a tuple of integers");
    std::vector<std::int64_t> out;
    for (const auto& item : v->items) {
      if (item->kind != Value::kInt) fail(at, std::string("tensor ") + what + ": expected a tuple of integers");
      out.push_back(item->integer);
    }
    return out;
  }
  ValuePtr call(std::size_t at, const std::string& name, const std::vector<ValuePtr>& args) {
    if (name == "collections.OrderedDict") {
      if (!args.empty()) fail(at, "OrderedDict called with arguments");
      return make(Value::kDict);
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (args.size() < 4 || args[0]->kind != Value::kStorage || args[1]->kind != Value::kInt) {
        fail(at, name + " called with unexpected arguments");
      }
      auto v = make(Value::kTensor);
      v->tensor.storage = args[0]->storage;
      v->tensor.offset = args[1]->integer;
      v->tensor.size = int_tuple(at, args[2], "size");
      v->tensor.stride = int_tuple(at, args[3], "stride");
      if (v->tensor.size.size() != v->tensor.stride.size()) fail(at, "tensor size and stride differ in length");
      return v;
    }
    // _rebuild_parameter(data, requires_grad, backward_hooks[, state]): the data.
    if (args.empty() || args[0]->kind != Value::kTensor) fail(at, name + " called without a tensor");
    return args[0];
  }

  Arena& arena_;
  const std::uint8_t* p_;
  std::size_t size_;
  std::size_t base_;
  std::size_t pos_ = 0;
  std::string where_;
  std::function<StorageRef(const Value&)> persistent_;
  std::vector<ValuePtr> stack_;
  std::vector<ValuePtr> memo_;
};

// ('storage', storage_type, key, location, numel[, view_metadata])
StorageRef storage_of_persistent_id(const Value& id, const std::string& where) {
  if (id.kind != Value::kTuple || id.items.size() < 5 || id.items[0]->kind != Value::kString ||
      id.items[0]->text != "storage" || id.items[1]->kind != Value::kStorageType ||
      id.items[2]->kind != Value::kString || id.items[4]->kind != Value::kInt) {
    throw Error(where + ": a persistent id that is not a ('storage', type, key, location, numel) tuple");
  }
  // The legacy stream of torch before 1.0 could name a slice of another
  // storage here ((view_key, offset, size)); later versions write None.
  if (id.items.size() > 5 && id.items[5]->kind != Value::kNone) {
    throw Error(where + ": storage '" + (id.items[2]->kind == Value::kString ? id.items[2]->text : std::string("?")) +
                "' is a view of another storage, which only torch before 1.0 wrote; not supported (re-save it)");
  }
  StorageRef s;
  s.dtype = id.items[1]->dtype;
  s.key = id.items[2]->text;
  s.numel = id.items[4]->integer;
  if (s.numel < 0) throw Error(where + ": storage '" + s.key + "' has a negative size");
  return s;
}

// ---- ZIP (stored entries, ZIP64 aware) --------------------------------------------------

struct ZipEntry {
  std::uint64_t data = 0, size = 0;
  std::uint32_t crc = 0;
};

std::uint64_t rd(const std::uint8_t* p, int n) {
  std::uint64_t u = 0;
  for (int i = 0; i < n; ++i) u |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return u;
}

std::map<std::string, ZipEntry> read_zip(const std::uint8_t* d, std::uint64_t n, const std::string& path) {
  auto fail = [&](const std::string& problem) -> void { throw Error(path + ": ZIP archive: " + problem); };
  if (n < 22) fail("too short for an end-of-central-directory record");
  std::uint64_t eocd = n - 22;
  const std::uint64_t lowest = n > 22 + 65535 ? n - 22 - 65535 : 0;
  while (rd(d + eocd, 4) != 0x06054b50) {
    if (eocd == lowest) fail("no end-of-central-directory record (truncated file?)");
    --eocd;
  }
  std::uint64_t count = rd(d + eocd + 10, 2), cd_size = rd(d + eocd + 12, 4), cd = rd(d + eocd + 16, 4);
  if ((count == 0xFFFF || cd == 0xFFFFFFFF || cd_size == 0xFFFFFFFF) && eocd >= 20 &&
      rd(d + eocd - 20, 4) == 0x07064b50) {
    const std::uint64_t z = rd(d + eocd - 20 + 8, 8);
    if (n < 56 || z > n - 56 || rd(d + z, 4) != 0x06064b50) fail("bad ZIP64 end-of-central-directory record");
    count = rd(d + z + 32, 8);
    cd_size = rd(d + z + 40, 8);
    cd = rd(d + z + 48, 8);
  }
  if (cd > n || cd_size > n - cd) fail("the central directory lies outside the file");
  std::map<std::string, ZipEntry> entries;
  std::uint64_t at = cd;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (at + 46 > cd + cd_size || rd(d + at, 4) != 0x02014b50) fail("central directory entry " + std::to_string(i) + " is malformed");
    const std::uint64_t flags = rd(d + at + 8, 2), method = rd(d + at + 10, 2);
    const auto crc = static_cast<std::uint32_t>(rd(d + at + 16, 4));
    std::uint64_t csize = rd(d + at + 20, 4), usize = rd(d + at + 24, 4), local = rd(d + at + 42, 4);
    const std::uint64_t name_len = rd(d + at + 28, 2), extra_len = rd(d + at + 30, 2), comment_len = rd(d + at + 32, 2);
    if (at + 46 + name_len + extra_len + comment_len > cd + cd_size) fail("central directory entry " + std::to_string(i) + " runs past the directory");
    std::string name(reinterpret_cast<const char*>(d + at + 46), static_cast<std::size_t>(name_len));
    // ZIP64 extra field: the 8-byte values of the fields saturated above, in order.
    for (std::uint64_t e = at + 46 + name_len; e + 4 <= at + 46 + name_len + extra_len;) {
      const std::uint64_t id = rd(d + e, 2), len = rd(d + e + 2, 2);
      if (e + 4 + len > at + 46 + name_len + extra_len) break;
      if (id == 0x0001) {
        std::uint64_t q = e + 4;
        auto next = [&](std::uint64_t& field) {
          if (field == 0xFFFFFFFF && q + 8 <= e + 4 + len) {
            field = rd(d + q, 8);
            q += 8;
          }
        };
        next(usize);
        next(csize);
        next(local);
      }
      e += 4 + len;
    }
    if (flags & 1) fail("entry " + name + " is encrypted");
    if (method != 0) fail("entry " + name + " is compressed (method " + std::to_string(method) + "); torch.save stores entries uncompressed");
    if (local > n - 30 || rd(d + local, 4) != 0x04034b50) fail("entry " + name + ": bad local header");
    const std::uint64_t data = local + 30 + rd(d + local + 26, 2) + rd(d + local + 28, 2);
    if (data > n || usize > n - data) fail("entry " + name + " runs past the end of the file (truncated?)");
    if (csize != usize) fail("entry " + name + " is stored but its sizes differ (" + std::to_string(csize) + " and " + std::to_string(usize) + ")");
    entries[name] = {data, usize, crc};
    at += 46 + name_len + extra_len + comment_len;
  }
  return entries;
}

// The pickle and the byte-order tag are small and decide everything else, so
// their CRC-32 is checked: a damaged byte there is reported as such rather
// than as a strange opcode. (The storages, which are the bulk of the file, are
// not: their bytes are only copied, and checking them would read every byte.)
void check_crc(const std::uint8_t* d, const ZipEntry& entry, const std::string& path, const std::string& name) {
  uLong crc = crc32(0L, Z_NULL, 0);
  std::uint64_t done = 0;
  while (done < entry.size) {
    const auto chunk = static_cast<uInt>(std::min<std::uint64_t>(entry.size - done, 1u << 30));
    crc = crc32(crc, d + entry.data + done, chunk);
    done += chunk;
  }
  if (static_cast<std::uint32_t>(crc) != entry.crc) {
    throw Error(path + ": ZIP archive: entry " + name + " fails its CRC-32 check (the file is damaged)");
  }
}

// The dict whose tensors are the weights: the top level, or, for a
// checkpoint that wraps its state dict (torch.save({"state_dict": sd, ...})),
// the one dict of tensors under "state_dict", "model" or "module" when the
// top level holds no tensor itself.
const Value* state_dict_of(const Value& root) {
  if (root.kind != Value::kDict) return &root;
  for (const auto& item : root.dict) {
    if (item.second->kind == Value::kTensor) return &root;
  }
  const Value* found = nullptr;
  for (const auto& [key, value] : root.dict) {
    if (key->kind != Value::kString || value->kind != Value::kDict) continue;
    if (key->text != "state_dict" && key->text != "model" && key->text != "module") continue;
    if (found != nullptr) return &root;  // two candidates: ambiguous, keep the top level
    found = value.get();
  }
  return found != nullptr ? found : &root;
}

}  // namespace

class PytorchBinParser {
 public:
  // Turns the top-level dict into entries, checking every view against its storage.
  static void collect(PytorchBinFile& file, const Value& top, const std::map<std::string, std::pair<std::uint64_t, std::uint64_t>>& storages) {
    const std::string& path = file.path();
    const Value& root = *state_dict_of(top);
    if (root.kind != Value::kDict) throw Error(path + ": the checkpoint is not a dict of tensors (a state dict)");
    for (const auto& [key, value] : root.dict) {
      if (key->kind != Value::kString) throw Error(path + ": a key of the state dict is not a string");
      if (value->kind != Value::kTensor) continue;  // e.g. an int step counter
      const TensorRef& t = value->tensor;
      const std::string where = path + ": tensor '" + key->text + "'";
      auto it = storages.find(t.storage.key);
      if (it == storages.end()) throw Error(where + ": its storage '" + t.storage.key + "' is not in the file");
      const std::uint64_t element = dtype_size(t.storage.dtype);
      const auto [begin, bytes] = it->second;
      if (static_cast<std::uint64_t>(t.storage.numel) > bytes / element) {
        throw Error(where + ": storage '" + t.storage.key + "' holds " + std::to_string(bytes) + " bytes, less than its " +
                    std::to_string(t.storage.numel) + " elements need");
      }
      // The furthest element the view reads must lie inside the storage.
      // at::Tensor allows at most 64 dimensions.
      if (t.size.size() > 64) throw Error(where + ": " + std::to_string(t.size.size()) + " dimensions (at most 64)");
      std::int64_t numel = 1, last = t.offset;
      for (std::size_t d = 0; d < t.size.size(); ++d) {
        if (t.size[d] < 0 || t.stride[d] < 0) throw Error(where + ": negative size or stride");
        if (t.size[d] > (std::int64_t{1} << 40) || t.stride[d] > (std::int64_t{1} << 40)) throw Error(where + ": implausible size or stride");
        numel *= t.size[d];
        if (numel > (std::int64_t{1} << 40)) throw Error(where + ": implausibly many elements");
        if (t.size[d] > 0) last += (t.size[d] - 1) * t.stride[d];
      }
      if (t.offset < 0 || t.offset > (std::int64_t{1} << 40) || (numel > 0 && last >= t.storage.numel)) {
        throw Error(where + ": its view (offset " + std::to_string(t.offset) + ") reads past its storage of " +
                    std::to_string(t.storage.numel) + " elements");
      }
      SafetensorsEntry entry;
      entry.name = key->text;
      entry.dtype = t.storage.dtype;
      entry.shape = t.size;
      if (file.index_.count(entry.name)) throw Error(where + ": appears twice");
      file.index_[entry.name] = file.entries_.size();
      file.entries_.push_back(entry);
      file.views_.push_back({begin, t.storage.numel, t.offset, t.stride});
    }
  }

  static std::shared_ptr<PytorchBinFile> open(const std::string& path) {
    auto file = std::shared_ptr<PytorchBinFile>(new PytorchBinFile());
    file->map_ = MappedFile::open(path);
    Arena arena;  // declared before the unpicklers, so it outlives them
    const std::uint8_t* d = file->map_->data();
    const std::uint64_t n = file->map_->size();
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> storages;  // key -> (begin, bytes)
    std::map<std::string, DType> dtypes;  // storage key -> dtype, as the persistent ids say
    auto persistent = [&](const Value& id) {
      StorageRef s = storage_of_persistent_id(id, path);
      dtypes[s.key] = s.dtype;
      return s;
    };
    if (n >= 4 && rd(d, 4) == 0x04034b50) {
      const auto zip = read_zip(d, n, path);
      std::string prefix;
      for (const auto& [name, entry] : zip) {
        const std::string suffix = "data.pkl";
        if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
            name.find('/') == name.size() - suffix.size() - 1) {
          prefix = name.substr(0, name.size() - suffix.size());
        }
      }
      if (prefix.empty() || !zip.count(prefix + "data.pkl")) throw Error(path + ": a ZIP archive without <name>/data.pkl: not a torch.save checkpoint");
      check_crc(d, zip.at(prefix + "data.pkl"), path, prefix + "data.pkl");
      auto order = zip.find(prefix + "byteorder");
      if (order != zip.end()) {
        check_crc(d, order->second, path, prefix + "byteorder");
        const std::string text(reinterpret_cast<const char*>(d + order->second.data), static_cast<std::size_t>(order->second.size));
        if (text != "little") throw Error(path + ": byteorder is '" + text + "'; only little-endian checkpoints are read");
      }
      for (const auto& [name, entry] : zip) {
        if (name.rfind(prefix + "data/", 0) == 0) storages[name.substr(prefix.size() + 5)] = {entry.data, entry.size};
      }
      const auto& pkl = zip.at(prefix + "data.pkl");
      Unpickler u(arena, d + pkl.data, static_cast<std::size_t>(pkl.size), path + ": " + prefix + "data.pkl", persistent);
      collect(*file, *u.load(), storages);
      return file;
    }
    // Legacy stream: magic, protocol, sys_info, structure, storage keys, storages.
    // Its first byte is a pickle's PROTO opcode; anything else (a tar archive
    // from torch before 0.4, a safetensors file misnamed .bin) is not one.
    if (n < 2 || d[0] != 0x80) {
      throw Error(path + ": not a PyTorch checkpoint (neither a ZIP archive nor a torch.save pickle stream)");
    }
    std::size_t at = 0;
    auto next_pickle = [&](const char* what) {
      // Offsets in errors are the file's: the stream has no other frame.
      Unpickler u(arena, d + at, static_cast<std::size_t>(n - at), path + ": " + what + " pickle", persistent, at);
      auto v = u.load();
      at += u.consumed();
      return v;
    };
    auto magic = next_pickle("magic number");
    static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);  // 0x1950a86a20f9469cfc6c
    if (magic->kind != Value::kInt || magic->text != kMagic) {
      throw Error(path + ": not a PyTorch checkpoint (no ZIP header, no legacy magic number)");
    }
    auto protocol = next_pickle("protocol version");
    if (protocol->kind != Value::kInt || protocol->integer != 1001) {
      throw Error(path + ": legacy torch.save protocol version " +
                  (protocol->kind == Value::kInt ? std::to_string(protocol->integer) : std::string("(not a number)")) +
                  "; only 1001 is known");
    }
    auto sys_info = next_pickle("sys info");
    if (sys_info->kind == Value::kDict) {
      for (const auto& [key, value] : sys_info->dict) {
        if (key->kind == Value::kString && key->text == "little_endian" && value->kind == Value::kBool && !value->integer) {
          throw Error(path + ": written on a big-endian machine (sys_info little_endian is False); only little-endian checkpoints are read");
        }
      }
    }
    auto root = next_pickle("state dict");
    auto keys = next_pickle("storage keys");
    if (keys->kind != Value::kList) throw Error(path + ": the storage key list is not a list");
    for (const auto& key : keys->items) {
      if (key->kind != Value::kString) throw Error(path + ": a storage key is not a string");
      if (n - at < 8) throw Error(path + ": storage '" + key->text + "' at byte " + std::to_string(at) + ": the file ends early (truncated?)");
      const std::uint64_t count = rd(d + at, 8);
      at += 8;
      auto dt = dtypes.find(key->text);
      if (dt == dtypes.end()) throw Error(path + ": storage '" + key->text + "' is listed but no tensor names it");
      const std::uint64_t element = dtype_size(dt->second);
      if (count > (n - at) / element) {
        throw Error(path + ": storage '" + key->text + "' at byte " + std::to_string(at - 8) + " claims " +
                    std::to_string(count) + " elements, more than the file holds (truncated?)");
      }
      storages[key->text] = {at, count * element};
      at += count * element;
    }
    collect(*file, *root, storages);
    return file;
  }
};

std::shared_ptr<PytorchBinFile> PytorchBinFile::open(const std::string& path) { return PytorchBinParser::open(path); }

const SafetensorsEntry* PytorchBinFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

at::Tensor PytorchBinFile::tensor(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error(path() + ": no tensor named '" + name + "'");
  const SafetensorsEntry& entry = entries_[it->second];
  const View& view = views_[it->second];
  const std::size_t element = dtype_size(entry.dtype);
  at::ScalarType type;
  switch (entry.dtype) {
    case DType::F64: type = at::kDouble; break;
    case DType::F32: type = at::kFloat; break;
    case DType::F16: type = at::kHalf; break;
    case DType::BF16: type = at::kBFloat16; break;
    case DType::I64: type = at::kLong; break;
    case DType::I32: type = at::kInt; break;
    case DType::I16: type = at::kShort; break;
    case DType::I8: type = at::kChar; break;
    case DType::U8: type = at::kByte; break;
    case DType::BOOL: type = at::kBool; break;
    default: throw Error(path() + ": tensor '" + name + "': unsupported dtype");
  }
  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  // Only the elements the view reads, [offset, last]: open() checked that
  // they lie inside the storage, and the storage inside the file.
  std::int64_t numel = 1, last = view.offset;
  for (std::size_t d = 0; d < entry.shape.size(); ++d) {
    numel *= entry.shape[d];
    if (entry.shape[d] > 0) last += (entry.shape[d] - 1) * view.stride[d];
  }
  if (numel == 0) return at::empty(entry.shape, options);
  const std::int64_t extent = last - view.offset + 1;
  const std::size_t nbytes = static_cast<std::size_t>(extent) * element;
  // The mapping is private (copy-on-write), so a mutable pointer is safe.
  auto* data = const_cast<std::uint8_t*>(map_->data()) + view.storage_begin +
               static_cast<std::size_t>(view.offset) * element;
  if (entry.dtype == DType::BOOL) {
    // A bool byte other than 0 or 1 is undefined behaviour for LibTorch.
    for (std::size_t i = 0; i < nbytes; ++i) {
      if (data[i] > 1) {
        throw Error(path() + ": tensor '" + name + "': BOOL data holds byte " + std::to_string(data[i]) +
                    " at element " + std::to_string(i) + "; only 0 and 1 are valid");
      }
    }
  }
  at::Tensor storage;
  if (reinterpret_cast<std::uintptr_t>(data) % element == 0) {
    // The ZIP format aligns storages (to 64 bytes): view the mapping, which
    // the tensor keeps alive, as SafetensorsFile does.
    std::shared_ptr<MappedFile> keep_alive = map_;
    storage = at::from_blob(data, {extent}, [keep_alive](void*) mutable { keep_alive.reset(); }, options);
  } else {
    // The legacy stream packs storages after 8-byte counts at any offset:
    // element loads from there would be misaligned, so copy.
    storage = at::empty({extent}, options);
    std::memcpy(storage.data_ptr(), data, nbytes);
  }
  // A view that is already contiguous stays a view of the mapping; a strided
  // one (a transpose, a slice of a shared storage) becomes its own copy.
  return storage.as_strided(entry.shape, view.stride, 0).contiguous();
}

}  // namespace openrm
