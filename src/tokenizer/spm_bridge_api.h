// The C interface of the sentencepiece bridge (libopenrm_spm_bridge.so).
//
// Debian's libsentencepiece carries its own protobuf, which clashes with the
// one LibTorch links (DESIGN.md, "sentencepiece and LibTorch clash"). So
// libopenrm never links sentencepiece: it dlopen()s this bridge with
// RTLD_LOCAL | RTLD_DEEPBIND, and nothing but plain C types crosses the
// boundary. Every function catches all exceptions; none aborts.
//
// Memory: strings and arrays that the bridge returns through `char**` /
// `int32_t**` are malloc'd by the bridge and released with
// openrm_spm_free_buffer(). Errors come back as such a string (never NULL on
// failure when the error pointer is non-NULL).
//
// Bump OPENRM_SPM_BRIDGE_ABI_VERSION whenever a signature or a meaning here
// changes: the loader refuses a bridge that reports another version.
#pragma once

#include <stddef.h>
#include <stdint.h>

#define OPENRM_SPM_BRIDGE_ABI_VERSION 1

// The bridge is built with -fvisibility=hidden; only these functions are
// exported.
#if defined(OPENRM_SPM_BRIDGE_BUILDING)
#define OPENRM_SPM_API __attribute__((visibility("default")))
#else
#define OPENRM_SPM_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct openrm_spm_model openrm_spm_model;

// Which API the bridge implements (OPENRM_SPM_BRIDGE_ABI_VERSION).
OPENRM_SPM_API int openrm_spm_abi_version(void);

// Releases a buffer the bridge returned (NULL is fine).
OPENRM_SPM_API void openrm_spm_free_buffer(void* buffer);

// Loads a model; NULL on failure with *error set.
OPENRM_SPM_API openrm_spm_model* openrm_spm_load_file(const char* path, char** error);
OPENRM_SPM_API openrm_spm_model* openrm_spm_load_bytes(const char* data, size_t size, char** error);
OPENRM_SPM_API void openrm_spm_free(openrm_spm_model* model);

// Encodes `size` bytes of text to ids (EncodeAsIds). Returns 0 and sets
// *ids (malloc'd, may be NULL when *count is 0) and *count, or returns -1
// with *error set.
OPENRM_SPM_API int openrm_spm_encode(const openrm_spm_model* model, const char* text, size_t size,
                                     int32_t** ids, size_t* count, char** error);
// Decodes ids to text (DecodeIds). Returns 0 and sets *text (malloc'd, NUL
// terminated) and *size, or -1 with *error set (an id out of range, ...).
OPENRM_SPM_API int openrm_spm_decode(const openrm_spm_model* model, const int32_t* ids,
                                     size_t count, char** text, size_t* size, char** error);

// Number of pieces in the model.
OPENRM_SPM_API int32_t openrm_spm_piece_size(const openrm_spm_model* model);
// The id of a piece, or -1 when the model has no such piece (sentencepiece
// itself would answer the unk id).
OPENRM_SPM_API int32_t openrm_spm_piece_to_id(const openrm_spm_model* model, const char* piece,
                                              size_t size);
// The piece of an id, valid while the model lives; NULL when out of range.
OPENRM_SPM_API const char* openrm_spm_id_to_piece(const openrm_spm_model* model, int32_t id,
                                                  size_t* size);

// -1 when the model has none.
OPENRM_SPM_API int32_t openrm_spm_bos_id(const openrm_spm_model* model);
OPENRM_SPM_API int32_t openrm_spm_eos_id(const openrm_spm_model* model);
OPENRM_SPM_API int32_t openrm_spm_pad_id(const openrm_spm_model* model);
OPENRM_SPM_API int32_t openrm_spm_unk_id(const openrm_spm_model* model);

// Piece types; 0 for ids out of range.
OPENRM_SPM_API int openrm_spm_is_control(const openrm_spm_model* model, int32_t id);
OPENRM_SPM_API int openrm_spm_is_unknown(const openrm_spm_model* model, int32_t id);
OPENRM_SPM_API int openrm_spm_is_byte(const openrm_spm_model* model, int32_t id);
OPENRM_SPM_API int openrm_spm_is_unused(const openrm_spm_model* model, int32_t id);

// Trains a model (SentencePieceTrainer::Train with a key/value map, as
// spm_train's --key=value flags, without the dashes). The training text is
// `sentences` (num_sentences strings of the given sizes) when num_sentences
// > 0, else the file(s) named by the "input" option. `seed` seeds
// sentencepiece's random generator (sentence sampling, shuffling).
// Returns 0 with *model (the serialized .model bytes, malloc'd) and
// *model_size, or -1 with *error set.
OPENRM_SPM_API int openrm_spm_train(const char* const* keys, const char* const* values,
                                    size_t num_options, const char* const* sentences,
                                    const size_t* sentence_sizes, size_t num_sentences,
                                    uint32_t seed, char** model, size_t* model_size, char** error);

#ifdef __cplusplus
}  // extern "C"
#endif
