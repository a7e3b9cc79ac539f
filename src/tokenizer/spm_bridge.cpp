// The sentencepiece bridge: the only code of openrm that links sentencepiece.
// It is built as its own shared object and dlopen()ed by libopenrm (see
// spm_bridge_api.h for why). Nothing but C types crosses its interface, and
// no exception escapes it.
#define OPENRM_SPM_BRIDGE_BUILDING 1
#include <dlfcn.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/spm_bridge_api.h"

struct openrm_spm_model {
  sentencepiece::SentencePieceProcessor processor;
  int32_t piece_size = 0;
};

namespace {

// A malloc'd, NUL-terminated copy (NULL when even that fails).
char* copy_out(std::string_view text) {
  char* buffer = static_cast<char*>(std::malloc(text.size() + 1));
  if (buffer == nullptr) return nullptr;
  if (!text.empty()) std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  return buffer;
}

void set_error(char** error, std::string_view message) {
  if (error != nullptr) *error = copy_out(message);
}

// Runs fn, turning any exception into an error message; returns fn's result
// or `failed`.
template <typename T, typename Fn>
T guarded(char** error, T failed, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    set_error(error, "out of memory");
  } catch (const std::exception& e) {
    set_error(error, e.what());
  } catch (...) {
    set_error(error, "unknown exception in sentencepiece");
  }
  return failed;
}

openrm_spm_model* finish_load(std::unique_ptr<openrm_spm_model> model,
                              const sentencepiece::util::Status& status, char** error) {
  if (!status.ok()) {
    set_error(error, status.ToString());
    return nullptr;
  }
  model->piece_size = model->processor.GetPieceSize();
  if (model->piece_size <= 0) {
    set_error(error, "the model has no pieces");
    return nullptr;
  }
  return model.release();
}

// Under RTLD_DEEPBIND, sentencepiece's references to std::cerr bind to
// libstdc++'s own copy of the object. A program that uses std::cerr itself
// holds a copy-relocated one, which is the copy libstdc++ constructs; the
// library's copy stays raw zeroed memory, and sentencepiece's first log line
// would crash. So when the two differ and ours was never constructed, build
// it on the program's stream buffer. Runs when the bridge is loaded.
void adopt_program_stream(void* main_program, std::ostream& ours, const char* symbol) {
  // Not RTLD_DEFAULT: from a DEEPBIND object that searches our own scope first.
  auto* program = static_cast<std::ostream*>(dlsym(main_program, symbol));
  if (program == nullptr || program == &ours) return;
  if (*reinterpret_cast<void* const*>(&ours) != nullptr) return;  // has a vtable: constructed
  auto* stream = new (&ours) std::ostream(program->rdbuf());
  stream->flags(program->flags());
}

__attribute__((constructor)) void adopt_program_streams() {
  void* main_program = dlopen(nullptr, RTLD_NOW);
  if (main_program == nullptr) return;
  adopt_program_stream(main_program, std::cerr, "_ZSt4cerr");
  adopt_program_stream(main_program, std::clog, "_ZSt4clog");
  adopt_program_stream(main_program, std::cout, "_ZSt4cout");
  dlclose(main_program);
}

bool in_range(const openrm_spm_model* model, int32_t id) {
  return model != nullptr && id >= 0 && id < model->piece_size;
}

// Feeds the caller's sentences to the trainer without copying them all.
class ArraySentences : public sentencepiece::SentenceIterator {
 public:
  ArraySentences(const char* const* sentences, const size_t* sizes, size_t count)
      : sentences_(sentences), sizes_(sizes), count_(count) {
    load();
  }
  bool done() const override { return index_ >= count_; }
  void Next() override {
    ++index_;
    load();
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void load() {
    if (index_ < count_) value_.assign(sentences_[index_], sizes_[index_]);
  }
  const char* const* sentences_;
  const size_t* sizes_;
  size_t count_;
  size_t index_ = 0;
  std::string value_;
};

}  // namespace

extern "C" {

int openrm_spm_abi_version(void) { return OPENRM_SPM_BRIDGE_ABI_VERSION; }

void openrm_spm_free_buffer(void* buffer) { std::free(buffer); }

openrm_spm_model* openrm_spm_load_file(const char* path, char** error) {
  return guarded<openrm_spm_model*>(error, nullptr, [&]() -> openrm_spm_model* {
    auto model = std::make_unique<openrm_spm_model>();
    auto status = model->processor.Load(path);
    return finish_load(std::move(model), status, error);
  });
}

openrm_spm_model* openrm_spm_load_bytes(const char* data, size_t size, char** error) {
  return guarded<openrm_spm_model*>(error, nullptr, [&]() -> openrm_spm_model* {
    auto model = std::make_unique<openrm_spm_model>();
    auto status = model->processor.LoadFromSerializedProto(std::string_view(data, size));
    return finish_load(std::move(model), status, error);
  });
}

void openrm_spm_free(openrm_spm_model* model) { delete model; }

int openrm_spm_encode(const openrm_spm_model* model, const char* text, size_t size, int32_t** ids,
                      size_t* count, char** error) {
  *ids = nullptr;
  *count = 0;
  return guarded<int>(error, -1, [&]() -> int {
    std::vector<int> out;
    auto status = model->processor.Encode(std::string_view(text, size), &out);
    if (!status.ok()) {
      set_error(error, status.ToString());
      return -1;
    }
    if (!out.empty()) {
      *ids = static_cast<int32_t*>(std::malloc(out.size() * sizeof(int32_t)));
      if (*ids == nullptr) throw std::bad_alloc();
      for (size_t i = 0; i < out.size(); ++i) (*ids)[i] = static_cast<int32_t>(out[i]);
    }
    *count = out.size();
    return 0;
  });
}

int openrm_spm_decode(const openrm_spm_model* model, const int32_t* ids, size_t count, char** text,
                      size_t* size, char** error) {
  *text = nullptr;
  *size = 0;
  return guarded<int>(error, -1, [&]() -> int {
    std::vector<int> in(count);
    for (size_t i = 0; i < count; ++i) {
      if (!in_range(model, ids[i])) {
        set_error(error, "id " + std::to_string(ids[i]) + " is out of range [0, " +
                             std::to_string(model->piece_size) + ")");
        return -1;
      }
      in[i] = ids[i];
    }
    std::string out;
    auto status = model->processor.Decode(in, &out);
    if (!status.ok()) {
      set_error(error, status.ToString());
      return -1;
    }
    *text = copy_out(out);
    if (*text == nullptr) throw std::bad_alloc();
    *size = out.size();
    return 0;
  });
}

int32_t openrm_spm_piece_size(const openrm_spm_model* model) { return model->piece_size; }

int32_t openrm_spm_piece_to_id(const openrm_spm_model* model, const char* piece, size_t size) {
  return guarded<int32_t>(nullptr, -1, [&]() -> int32_t {
    std::string_view wanted(piece, size);
    int id = model->processor.PieceToId(wanted);
    // sentencepiece answers unknown pieces with the unk id.
    if (!in_range(model, id) || model->processor.IdToPiece(id) != wanted) return -1;
    return id;
  });
}

const char* openrm_spm_id_to_piece(const openrm_spm_model* model, int32_t id, size_t* size) {
  *size = 0;
  if (!in_range(model, id)) return nullptr;
  return guarded<const char*>(nullptr, nullptr, [&]() -> const char* {
    const std::string& piece = model->processor.IdToPiece(id);
    *size = piece.size();
    return piece.c_str();
  });
}

int32_t openrm_spm_bos_id(const openrm_spm_model* model) { return model->processor.bos_id(); }
int32_t openrm_spm_eos_id(const openrm_spm_model* model) { return model->processor.eos_id(); }
int32_t openrm_spm_pad_id(const openrm_spm_model* model) { return model->processor.pad_id(); }
int32_t openrm_spm_unk_id(const openrm_spm_model* model) { return model->processor.unk_id(); }

int openrm_spm_is_control(const openrm_spm_model* model, int32_t id) {
  return in_range(model, id) && model->processor.IsControl(id) ? 1 : 0;
}
int openrm_spm_is_unknown(const openrm_spm_model* model, int32_t id) {
  return in_range(model, id) && model->processor.IsUnknown(id) ? 1 : 0;
}
int openrm_spm_is_byte(const openrm_spm_model* model, int32_t id) {
  return in_range(model, id) && model->processor.IsByte(id) ? 1 : 0;
}
int openrm_spm_is_unused(const openrm_spm_model* model, int32_t id) {
  return in_range(model, id) && model->processor.IsUnused(id) ? 1 : 0;
}

int openrm_spm_train(const char* const* keys, const char* const* values, size_t num_options,
                     const char* const* sentences, const size_t* sentence_sizes,
                     size_t num_sentences, uint32_t seed, char** model, size_t* model_size,
                     char** error) {
  *model = nullptr;
  *model_size = 0;
  return guarded<int>(error, -1, [&]() -> int {
    std::unordered_map<std::string, std::string> options;
    for (size_t i = 0; i < num_options; ++i) options[keys[i]] = values[i];
    // static_cast<unsigned>(-1) is reserved by sentencepiece for "random".
    sentencepiece::SetRandomGeneratorSeed(seed == UINT32_MAX ? seed - 1 : seed);
    std::string serialized;
    sentencepiece::util::Status status;
    if (num_sentences > 0) {
      ArraySentences iterator(sentences, sentence_sizes, num_sentences);
      status = sentencepiece::SentencePieceTrainer::Train(options, &iterator, &serialized);
    } else {
      status = sentencepiece::SentencePieceTrainer::Train(options, nullptr, &serialized);
    }
    if (!status.ok()) {
      set_error(error, status.ToString());
      return -1;
    }
    if (serialized.empty()) {
      set_error(error, "sentencepiece produced an empty model");
      return -1;
    }
    *model = static_cast<char*>(std::malloc(serialized.size()));
    if (*model == nullptr) throw std::bad_alloc();
    std::memcpy(*model, serialized.data(), serialized.size());
    *model_size = serialized.size();
    return 0;
  });
}

}  // extern "C"
