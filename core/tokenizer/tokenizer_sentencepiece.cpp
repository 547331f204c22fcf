// The SentencePiece tokenizer.model path: the ModelProto is read by mechscope's own parser
// (core/tokenizer/sentencepiece_proto.h; libsentencepiece's bundled protobuf collides with LibTorch's) and
// encoded by the same SentencePiece-BPE algorithm as GGUF "llama" vocabularies.
#include "core/tokenizer/sentencepiece_proto.h"
#include "core/tokenizer/tokenizer_load.h"
#include "core/tokenizer/tokenizer_spm.h"

namespace ms {

std::unique_ptr<BaseTokenizer> read_sentencepiece_model(const std::string& path) {
  Result<SentencePieceModel> sp = read_spm_proto(path);
  if (!sp) throw InputError(sp.error().message, sp.error().code);
  if (sp->model_type != 2)
    fail_input(path + ": SentencePiece model type " + std::to_string(sp->model_type) +
               (sp->model_type == 1 ? " (unigram)" : "") +
               " is not supported; only BPE models (Llama 2, Mistral) are");
  if (!sp->escape_whitespaces || sp->remove_extra_whitespaces ||
      (sp->normalizer_name != "identity" && !sp->normalizer_name.empty()))
    fail_input(path + ": SentencePiece normalizer '" + sp->normalizer_name +
               "' (or whitespace handling) is not supported; only the identity normalizer "
               "without whitespace folding is (Llama 2, Mistral)");
  GgufVocab v;
  v.model = "llama";
  v.tokens = sp->pieces;
  v.scores = sp->scores;
  v.token_types = sp->types;
  v.special.bos = sp->bos_id;
  v.special.eos = sp->eos_id;
  v.special.unk = sp->unk_id;
  v.special.pad = sp->pad_id;
  v.special.add_bos = sp->bos_id >= 0;  // as Llama's tokenizer_config does; load_tokenizer may override
  v.add_space_prefix = sp->add_dummy_prefix;
  std::unique_ptr<BaseTokenizer> tok = build_gguf_tokenizer(v);
  tok->set_kind("SentencePiece BPE (tokenizer.model)");
  return tok;
}

}  // namespace ms
