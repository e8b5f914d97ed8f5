#include "train/trainer.h"

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>

#include "core/checksum.h"
#include "core/errors.h"
#include "dist/host_collectives.h"
#include "dist/nccl_communicator.h"
#include "dist/rendezvous.h"
#include "model/make_backend.h"
#include "data/batch.h"
#include "data/fps.h"
#include "model/buffer.h"
#include "model/device_batch.h"
#include "eval/evaluate.h"
#include "train/adam.h"
#include "train/checkpoint.h"
#include "train/interrupt.h"
#include "train/loss_scaler.h"
#include "train/metrics_log.h"
#include "train/progress.h"
#include "train/train_step.h"

namespace pointnet {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

void validate(const TrainOptions& o) {
  if (o.data_dir.empty()) fail("train: --data is required");
  if (o.out_dir.empty()) fail("train: --out is required");
  if (o.epochs < 1) fail("train: --epochs must be at least 1, got ", o.epochs);
  if (o.batch_size < 2) fail("train: --batch-size must be at least 2 (BatchNorm needs two clouds), got ", o.batch_size);
  if (o.points < 0 || o.points > 1000000) fail("train: --points must be in 1..1000000, got ", o.points);
  if (!(o.lr > 0) || !std::isfinite(o.lr)) fail("train: --lr must be a positive number");
  if (o.lr_step < 1) fail("train: --lr-step must be at least 1");
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) fail("train: --weight-decay must be >= 0");
  if (!(o.dropout >= 0 && o.dropout < 1)) fail("train: --dropout must be in [0, 1), got ", o.dropout);
  (void)parse_augmentation(o.augmentation);  // names the bad value
  if (o.sampling != "random" && o.sampling != "fps")
    fail("train: --sampling '", o.sampling, "': expected random or fps");
}

// fp16 GEMM operands underflow where small gradients live: fp16 trains with
// dynamic loss scaling. bf16 and tf32 have fp32's exponent range and need none.
LossScaler make_loss_scaler(const TrainOptions& o) {
  if (o.loss_scaling) return LossScaler(*o.loss_scaling);
  return o.precision == "fp16" ? LossScaler(LossScalerConfig{}) : LossScaler::disabled();
}

// The recipe values that must stay fixed across --resume for the run to be exact.
nlohmann::json recipe_json(const TrainOptions& o, int points, int ranks) {
  nlohmann::json recipe = {{"seed", o.seed}, {"batch_size", o.batch_size}, {"points", points}, {"lr", o.lr},
                           {"lr_step", o.lr_step}, {"lr_gamma", o.lr_gamma}, {"augment", o.augment},
                           {"augmentation", o.augmentation}, {"weight_decay", o.weight_decay}, {"dropout", o.dropout},
                           {"feature_transform", o.feature_transform}, {"use_normals", o.use_normals},
                           {"fp32_fc", o.fp32_fc}, {"sampling", o.sampling}, {"modelnet_classes", o.modelnet_classes},
                           {"class_choice", o.class_choice}, {"data", o.data_dir}};
  // Only when it acts (several ranks): other runs' checkpoints keep their bytes.
  if (o.sync_batchnorm && ranks > 1) recipe["sync_batchnorm"] = true;
  return recipe;
}

struct EpochTotals {
  double loss_sum = 0.0;   // sum over batches of the batch's mean loss
  int batches = 0;         // batches with a finite loss (all but fp16 forward overflows)
  int64_t correct = 0, rows = 0;
  double seconds = 0.0;
  int skipped = 0;         // fp16 steps skipped for overflow (no update)
  nlohmann::json to_json() const {
    nlohmann::json j = {{"loss_sum", loss_sum}, {"batches", batches}, {"correct", correct}, {"rows", rows},
                        {"seconds", seconds}};
    // Only when nonzero, so runs without skips (every fp32/tf32/bf16 run)
    // write the same checkpoint bytes as before loss scaling existed.
    if (skipped) j["skipped"] = skipped;
    return j;
  }
  static EpochTotals from_json(const nlohmann::json& j) {
    EpochTotals t;
    t.loss_sum = j.at("loss_sum");
    t.batches = j.at("batches");
    t.correct = j.at("correct");
    t.rows = j.at("rows");
    t.seconds = j.at("seconds");
    t.skipped = j.value("skipped", 0);
    return t;
  }
};

// ", 3 steps skipped (fp16 overflow), loss scale 32768" when any were; else "".
std::string skipped_note(int skipped, const LossScaler& scaler) {
  if (skipped == 0) return "";
  return ", " + std::to_string(skipped) + (skipped == 1 ? " step" : " steps") +
         " skipped (fp16 overflow), loss scale " + fmt("%.0f", scaler.scale());
}

// A rank's GPU: CUDA_VISIBLE_DEVICES narrowed to the local rank's entry when
// it lists several (a scheduler's allocation), or the local rank when unset;
// one entry (the launcher's choice) stays.
void choose_gpu(int local_rank) {
  const std::vector<std::string> ids = cuda_visible_devices();
  if (ids.size() == 1) return;
  setenv("CUDA_VISIBLE_DEVICES", (ids.empty() ? std::to_string(local_rank) : gpu_of_rank(ids, local_rank)).c_str(), 1);
}

// A multi-process run named by the environment (POINTNET_WORLD_SIZE > 1):
// this process's GPU, then NCCL over rank 0's id. Null for one process.
std::unique_ptr<Communicator> communicator_from_environment(const TrainOptions& o, const DistEnv& env,
                                                            Backend<float>& be) {
  if (env.world_size == 1) return nullptr;
  if (o.device != "cuda")
    fail("train: a multi-process run (POINTNET_WORLD_SIZE=", env.world_size, ") trains on GPUs: pass --device cuda");
  std::vector<uint8_t> id = env.rank == 0 ? nccl_unique_id() : std::vector<uint8_t>{};
  id = share_from_rank0(env, id);
  return make_nccl_communicator(be, env.rank, env.world_size, id);
}

std::vector<int> epoch_order(int count, uint64_t seed, int epoch) {
  std::vector<int> order(count);
  std::iota(order.begin(), order.end(), 0);
  Rng rng(mix_seed(seed, 0x5EED, static_cast<uint64_t>(epoch)));
  for (int i = count - 1; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<uint32_t>(i + 1))]);
  return order;
}

}  // namespace

TrainResult train(const TrainOptions& options) {
  validate(options);
  TrainOptions o = options;
  const auto start = Clock::now();
  const bool seg = o.task == Task::Segmentation;
  const bool shapenet = dataset_layout(o.data_dir) == "shapenet_part";
  if (!seg && !o.class_choice.empty())
    fail("train: --class-choice selects one ShapeNet part category for --task seg; a classifier needs all classes");
  if (seg && !shapenet)
    fail(o.data_dir, ": segmentation needs the ShapeNet part layout (synsetoffset2category.txt, ",
         "<synset>/points/*.pts, <synset>/points_label/*.seg)");
  if (fs::exists(o.out_dir) && !fs::is_directory(o.out_dir))
    fail(o.out_dir, ": --out must be a folder (for checkpoint.safetensors and metrics.jsonl), but it is a file");
  const std::string checkpoint_path = (fs::path(o.out_dir) / "checkpoint.safetensors").string();
  const std::string log_path = (fs::path(o.out_dir) / "metrics.jsonl").string();

  // Resuming: the checkpoint's recipe wins, so the continued run is the same run.
  Checkpoint resumed;
  int resume_epoch = 0, resume_batch = 0;
  nlohmann::json resume_totals;
  LossScaler scaler = make_loss_scaler(o);
  if (o.resume) {
    if (!fs::exists(checkpoint_path)) fail(checkpoint_path, ": no checkpoint to resume from");
    resumed = load_checkpoint(checkpoint_path);
    try {
      const nlohmann::json& r = resumed.info.trainer.at("recipe");
      o.seed = r.at("seed");
      o.batch_size = r.at("batch_size");
      o.points = r.at("points");
      o.lr = r.at("lr");
      o.lr_step = r.at("lr_step");
      o.lr_gamma = r.at("lr_gamma");
      o.augment = r.at("augment");
      // Absent in checkpoints from before these options: their defaults then.
      o.augmentation = r.value("augmentation", std::string("rotate-jitter"));
      o.weight_decay = r.value("weight_decay", 0.0);
      o.dropout = r.value("dropout", static_cast<double>(kDropoutP));
      o.feature_transform = r.at("feature_transform");
      o.class_choice = r.at("class_choice");
      o.use_normals = r.value("use_normals", false);  // absent in checkpoints from before normals
      o.sampling = r.value("sampling", std::string("random"));
      o.modelnet_classes = r.value("modelnet_classes", 0);
      o.sync_batchnorm = r.value("sync_batchnorm", false);
      resume_epoch = resumed.info.trainer.at("epoch_in_progress");
      resume_batch = resumed.info.trainer.at("batch");
      resume_totals = resumed.info.trainer.at("totals");
      (void)EpochTotals::from_json(resume_totals);  // validated here, where errors name the file
    } catch (const nlohmann::json::exception& e) {
      fail(checkpoint_path, ": cannot resume: the checkpoint's trainer state is incomplete (", e.what(), ")");
    }
    // The loss scale carries on where it was. A checkpoint of a run without
    // scaling (fp32, tf32, bf16) has none: fp16 then starts from the initial scale.
    const auto saved_scaler = resumed.info.trainer.find("loss_scaler");
    if (scaler.enabled() && saved_scaler != resumed.info.trainer.end()) {
      try {
        scaler.restore(*saved_scaler);
      } catch (const Error& e) {
        fail(checkpoint_path, ": cannot resume: ", e.what());
      }
    }
    if (resume_epoch >= o.epochs)
      fail(checkpoint_path, ": the run has already finished ", resume_epoch, " epochs; pass --epochs larger than ",
           resume_epoch, " to train further");
  } else if (fs::exists(checkpoint_path)) {
    fail(checkpoint_path, ": a run already exists here; pass --resume to continue it or choose another --out");
  }
  if (o.points == 0) o.points = shapenet ? 2500 : 1024;

  LoadOptions load;
  load.split = shapenet ? "trainval" : "train";
  load.class_choice = o.class_choice;
  load.with_parts = seg;
  load.mesh_points = o.mesh_points;
  load.seed = o.seed;
  load.modelnet_classes = o.modelnet_classes;
  Dataset train_data = load_dataset(o.data_dir, load);
  if (o.sampling == "fps") keep_farthest_points(train_data, o.points);
  if (o.use_normals && !train_data.has_normals)
    fail(o.data_dir, ": --use-normals, but this dataset has no normals (they come with e.g. ",
         "modelnet40_normal_resampled, ShapeNet part _normal, .npy with 6 columns, .ply/.pcd with normals, meshes)");
  // The test split comes from --data unless --test-data names another dataset
  // (e.g. the exact f32 test set beside an f16 training pack) or "none".
  const bool evaluate_test = o.test_data != "none";
  Dataset test_data;
  if (evaluate_test) {
    load.split = "test";
    test_data = load_dataset(o.test_data.empty() ? o.data_dir : o.test_data, load);
    if (o.sampling == "fps") keep_farthest_points(test_data, o.points);
    if (test_data.class_names != train_data.class_names)
      fail(o.test_data, ": its classes differ from the training data's (", o.data_dir, ")");
    if (o.use_normals && !test_data.has_normals)
      fail(o.test_data.empty() ? o.data_dir : o.test_data, ": --use-normals, but its test split has no normals");
  }

  CheckpointInfo info;
  info.config.task = seg ? ModelTask::Segmentation : ModelTask::Classification;
  info.config.num_classes = seg ? train_data.num_parts : static_cast<int>(train_data.class_names.size());
  info.config.feature_transform = o.feature_transform;
  info.config.input_channels = o.use_normals ? 6 : 3;
  info.class_names = train_data.class_names;
  info.part_offset = train_data.part_offset;
  info.part_count = train_data.part_count;
  info.class_choice = o.class_choice;
  info.up_axis = train_data.up_axis;
  if (o.resume) {
    if (resumed.info.class_names != info.class_names || resumed.info.config.num_classes != info.config.num_classes)
      fail(checkpoint_path, ": the checkpoint was trained on other classes or parts than ", o.data_dir, " has");
    info.part_offset = resumed.info.part_offset;
    info.part_count = resumed.info.part_count;
  }
  if (evaluate_test) align_to_model(test_data, info);
  const int B = o.batch_size, N = o.points;
  // Data parallelism: this process's GPU must be chosen before CUDA starts.
  const DistEnv env = o.communicator ? DistEnv{} : dist_env_from_environment();
  if (env.world_size > 1) choose_gpu(env.local_rank);
  const int ranks = o.communicator ? o.communicator->size() : env.world_size;
  const int rank = o.communicator ? o.communicator->rank() : env.rank;
  const bool lead = rank == 0;  // writes the run folder, evaluates, shows progress
  const int batches_per_epoch = static_cast<int>(train_data.shapes.size()) / (B * ranks);
  if (batches_per_epoch == 0)
    fail(o.data_dir, ": the training split has ", train_data.shapes.size(), " shapes, fewer than one batch of ", B,
         ranks > 1 ? " on each of " + std::to_string(ranks) + " ranks" : std::string());

  std::unique_ptr<Backend<float>> backend = make_backend(o.device, o.precision, o.fp32_fc);
  Backend<float>& be = *backend;
  std::unique_ptr<Communicator> owned_communicator = communicator_from_environment(o, env, be);
  Communicator* comm = o.communicator ? o.communicator : owned_communicator.get();
  if (lead) fs::create_directories(o.out_dir);  // only now that the options and data are known to be good
  PointNet<float> model(info.config, be);
  model.set_dropout_probability(o.dropout);
  AdamConfig adam_config;
  adam_config.weight_decay = o.weight_decay;
  Adam<float> adam(be, model.params().trainable_count(), adam_config);
  int first_epoch = 0, first_batch = 0;
  EpochTotals totals;
  if (o.resume) {
    restore_model(resumed, model);
    restore_optimizer(resumed, model, adam);
    first_epoch = resume_epoch;
    first_batch = resume_batch;
    const int saved_ranks = resumed.info.trainer.value("ranks", 1);
    if (saved_ranks != ranks && first_batch > 0)
      fail(checkpoint_path, ": the run stopped inside an epoch with ", saved_ranks, saved_ranks == 1 ? " rank" : " ranks",
           "; resume it with as many (--gpus ", saved_ranks, ")");
    if (lead) {
      totals = EpochTotals::from_json(resume_totals);  // the epoch so far, over every rank
      MetricsLog::truncate_after_epoch(log_path, first_epoch);
      // A model.safetensors from an earlier finish is older than the run now going on.
      std::error_code ignored;
      fs::remove(fs::path(o.out_dir) / "model.safetensors", ignored);
      std::cerr << "resuming " << checkpoint_path << " at epoch " << first_epoch + 1 << ", batch " << first_batch
                << "\n";
    }
  } else {
    Rng init(mix_seed(o.seed, 0x1417));
    model.initialize(init);
  }
  if (comm && ranks > 1) {
    // Every rank must run the same loop (the same collectives, as often):
    // ranks that loaded other data, options or checkpoints stop here, all of
    // them, instead of hanging or mixing unrelated gradients later.
    const std::vector<float> mine = {static_cast<float>(batches_per_epoch), static_cast<float>(first_epoch),
                                     static_cast<float>(first_batch), static_cast<float>(B), static_cast<float>(N),
                                     static_cast<float>(o.epochs), static_cast<float>(info.config.num_classes),
                                     static_cast<float>(model.params().trainable_count() % (1 << 22)),
                                     static_cast<float>(scaler.enabled() ? scaler.scale() : 0.0),
                                     o.sync_batchnorm ? 1.0f : 0.0f};
    Buffer<float> scratch(&be);
    if (!ranks_agree_with_rank0(comm, be, scratch, mine))
      fail("train: the ranks disagree on the run (batches per epoch, resume point, --batch-size, --points, ",
           "--epochs, classes, model, loss scale or --sync-bn): every rank needs the same data, options and "
           "checkpoint");
    // Every rank starts from rank 0's parameters and BatchNorm statistics
    // (they agree already, from the same seed or checkpoint: this makes sure).
    ParamStore<float>& p = model.params();
    comm->broadcast(p.values(), p.trainable_count(), 0);
    comm->broadcast(p.buffers(), p.buffer_count(), 0);
    // After the vote: every rank asks alike, so a backend that refuses stops them all.
    if (o.sync_batchnorm) be.set_batchnorm_group(comm);
  } else if (o.sync_batchnorm) {
    std::cerr << "train: --sync-bn has nothing to synchronise with one rank (it acts with --gpus N or several "
                 "processes)\n";
  }
  std::optional<MetricsLog> log;
  if (lead) log.emplace(log_path, o.resume);

  if (lead)
    std::cerr << (ranks > 1 ? std::to_string(ranks) + " ranks, " : std::string()) << "train: " << train_data.shapes.size() << " shapes, test: " << (evaluate_test ? std::to_string(test_data.shapes.size()) : "none") << ", "
            << info.class_names.size() << (seg ? " categories, " : " classes, ")
            << (seg ? std::to_string(info.config.num_classes) + " parts, " : std::string())
            << N << " points" << (o.use_normals ? " with normals" : "") << ", batch " << B
            << (o.feature_transform ? ", feature transform" : "") << ", "
            << be.name() << " " << o.precision << (o.fp32_fc && o.precision != "fp32" ? " (fc layers fp32)" : "")
            << (scaler.enabled() ? ", dynamic loss scale " + fmt("%.0f", scaler.scale()) : std::string()) << "\n";

  SampleOptions sampling;
  sampling.num_points = N;
  sampling.augment = o.augment;
  sampling.augmentation = parse_augmentation(o.augmentation);
  sampling.up_axis = train_data.up_axis;
  sampling.use_normals = o.use_normals;
  sampling.whole_when_exact = o.sampling == "fps";
  std::vector<float> points(static_cast<size_t>(B) * N * sampling.channels());
  std::vector<int32_t> labels(static_cast<size_t>(B) * (seg ? N : 1));
  DeviceBatch<float> batch(be);
  TrainResult result;
  result.checkpoint = checkpoint_path;

  auto save = [&](int epoch_in_progress, int batch, const EpochTotals& t) {
    info.epoch = epoch_in_progress;
    info.trainer = {{"recipe", recipe_json(o, N, ranks)}, {"epoch_in_progress", epoch_in_progress}, {"batch", batch},
                    {"totals", t.to_json()}};
    if (ranks > 1) info.trainer["ranks"] = ranks;  // batch counts global batches of ranks x B
    if (scaler.enabled()) info.trainer["loss_scaler"] = scaler.to_json();
    if (lead) save_checkpoint(checkpoint_path, model, &adam, info);
  };
  TrainStep stepper(model, adam, scaler);
  stepper.set_communicator(comm);
  // Ctrl-C reaches every rank at its own moment: they stop together after the
  // first step that any of them saw it in.
  Buffer<float> rank_sums(&be);
  // What rank 0 alone does (evaluate, write) may fail; the others must not
  // wait for it forever in the next collective: the failure rides on this vote.
  std::string lead_failure;
  const auto interrupted = [&] {
    const std::vector<double> votes =
        sum_over_ranks(comm, be, rank_sums, {interrupt_requested() ? 1.0 : 0.0, lead_failure.empty() ? 0.0 : 1.0});
    if (votes[1] > 0) fail(lead ? lead_failure : "train: rank 0 failed (its error is in its output); stopping");
    return votes[0] > 0;
  };
  // Sums the epoch's figures over the ranks (every rank calls it at the same point).
  const auto epoch_over_ranks = [&](EpochTotals t) {
    if (ranks == 1) return t;
    t.loss_sum = sum_over_ranks(comm, be, rank_sums, {t.loss_sum})[0];
    const std::vector<int64_t> c = sum_counts_over_ranks(comm, be, rank_sums, {t.batches, t.correct, t.rows});
    t.batches = static_cast<int>(c[0]);
    t.correct = c[1];
    t.rows = c[2];
    return t;
  };

  for (int epoch = first_epoch; epoch < o.epochs; ++epoch) {
    const double lr = o.lr * std::pow(o.lr_gamma, epoch / o.lr_step);
    const std::vector<int> order = epoch_order(static_cast<int>(train_data.shapes.size()), o.seed, epoch);
    Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                      static_cast<int64_t>(batches_per_epoch) * B);
    if (o.plain_output) progress.force_plain(true);
    const auto epoch_start = Clock::now();
    const double seconds_before = totals.seconds;
    for (int b = (epoch == first_epoch ? first_batch : 0); b < batches_per_epoch; ++b) {
      // This rank's slice of the global batch b (ranks x B shapes of the epoch's order).
      const size_t first = (static_cast<size_t>(b) * ranks + rank) * B;
      std::vector<int> indices(order.begin() + first, order.begin() + first + B);
      assemble_batch(train_data, indices, sampling, mix_seed(o.seed, 0xA06, static_cast<uint64_t>(epoch)), seg,
                     points.data(), labels.data());
      Rng dropout(mix_seed(o.seed, 0xD50 + static_cast<uint64_t>(rank), static_cast<uint64_t>(epoch) * 1000003u +
                                                                             static_cast<uint64_t>(b)));
      const float* batch_points = batch.points(points.data(), points.size());
      const int32_t* targets = batch.labels(labels.data(), labels.size());
      const StepResult step = stepper.run(batch_points, targets, B, N, lr, &dropout);
      const LossValue& loss = step.loss;
      if (step.outcome == StepOutcome::kDiverged) {
        const std::string where = " at epoch " + std::to_string(epoch + 1) + ", batch " + std::to_string(b + 1);
        const std::string last_good = " (the last good checkpoint is " + checkpoint_path + ")";
        if (!scaler.enabled() || !step.loss_finite)
          fail("train: the loss became ", loss.total, where,
               scaler.enabled() ? " with the loss scale at its floor (" + fmt("%.0f", step.scale) + ")" : "",
               "; try a lower --lr", scaler.enabled() ? " or --precision bf16" : "", last_good);
        fail("train: the gradients overflowed", where, " even at the smallest loss scale (",
             fmt("%.0f", step.scale), "); try a lower --lr or --precision bf16", last_good);
      }
      if (step.outcome == StepOutcome::kSkipped) totals.skipped += 1;
      if (step.loss_finite) {  // a skipped step's loss still counts when only its gradients overflowed
        totals.loss_sum += loss.total;
        totals.batches += 1;
        totals.correct += loss.correct;
        totals.rows += loss.rows;
      }
      totals.seconds = seconds_before + seconds_since(epoch_start);
      // Every batch the epoch has processed (b + 1, across a resume), skipped ones too.
      const double clouds_per_s = static_cast<double>(b + 1) * B / std::max(totals.seconds, 1e-9);
      if (lead)
        progress.update(static_cast<int64_t>(b + 1) * B,
                      "loss " + fmt("%.3f", totals.loss_sum / std::max(totals.batches, 1)) + " acc " +
                          fmt("%.1f%%", 100.0 * totals.correct / std::max<int64_t>(totals.rows, 1)) + " " +
                          fmt("%.0f clouds/s", clouds_per_s) +
                          (totals.skipped ? " skipped " + std::to_string(totals.skipped) : std::string()));
      if (interrupted()) {
        save(epoch, b + 1, epoch_over_ranks(totals));
        if (lead) {
          progress.finish("interrupted");
          std::cerr << "saved " << checkpoint_path << " at epoch " << epoch + 1 << ", batch " << b + 1
                    << "; continue with --resume\n";
        }
        result.interrupted = true;
        result.rank = rank;
        result.ranks = ranks;
        result.epochs_done = epoch;
        result.seconds = seconds_since(start);
        return result;
      }
    }
    totals = epoch_over_ranks(totals);  // over every rank's shards (skips are the same on all)
    const double train_loss = totals.loss_sum / std::max(totals.batches, 1);
    const double train_acc = static_cast<double>(totals.correct) / std::max<int64_t>(totals.rows, 1);
    const std::string skipped = skipped_note(totals.skipped, scaler);
    if (lead) progress.finish("loss " + fmt("%.3f", train_loss) + " acc " + fmt("%.1f%%", 100 * train_acc) + skipped);

    nlohmann::json record = {{"epoch", epoch + 1}, {"lr", lr}, {"train_loss", train_loss},
                             {"train_accuracy", train_acc}, {"seconds", totals.seconds},
                             {"clouds_per_s", batches_per_epoch * B * ranks / std::max(totals.seconds, 1e-9)},
                             {"device", o.device}, {"precision", o.precision},
                             {"skipped_steps", totals.skipped}, {"loss_scale", scaler.scale()}};
    const bool last = epoch + 1 == o.epochs;
    if (ranks > 1) record["ranks"] = ranks;
    try {  // rank 0's own work; over several ranks a failure is voted on below, not left to hang the others
      if (lead && evaluate_test && (last || (o.eval_every > 0 && (epoch + 1) % o.eval_every == 0))) {
        result.evaluated = true;
        ModelPredictor predictor(model);
        const Evaluation ev = evaluate(predictor, test_data, info, N, B, kEvaluationSeed, nullptr);
        record["test_loss"] = ev.loss;
        std::string summary;
        if (!seg) {
          record["test_accuracy"] = ev.classification.overall_accuracy;
          record["test_mean_class_accuracy"] = ev.classification.mean_class_accuracy;
          result.test_accuracy = ev.classification.overall_accuracy;
          result.test_mean_class_accuracy = ev.classification.mean_class_accuracy;
          summary = "test acc " + fmt("%.2f%%", 100 * ev.classification.overall_accuracy) + " (mean class " +
                    fmt("%.2f%%", 100 * ev.classification.mean_class_accuracy) + ")";
        } else {
          record["test_instance_miou"] = ev.segmentation.instance_miou;
          record["test_class_miou"] = ev.segmentation.class_miou;
          result.test_instance_miou = ev.segmentation.instance_miou;
          result.test_class_miou = ev.segmentation.class_miou;
          summary = "test mIoU " + fmt("%.2f%%", 100 * ev.segmentation.instance_miou) + " (class " +
                    fmt("%.2f%%", 100 * ev.segmentation.class_miou) + ")";
        }
        std::cerr << "epoch " << epoch + 1 << "/" << o.epochs << ": train loss " << fmt("%.4f", train_loss)
                  << ", train acc " << fmt("%.2f%%", 100 * train_acc) << ", " << summary << skipped << ", "
                  << fmt("%.1fs", totals.seconds) << "\n";
      }
      if (lead) log->write(record);
      totals = EpochTotals();
      save(epoch + 1, 0, totals);
    } catch (const std::exception& e) {
      if (ranks == 1) throw;
      lead_failure = e.what();
    }
    result.epochs_done = epoch + 1;
    if (interrupted() && !last) {
      // Interrupted during the evaluation or save after the epoch's last batch:
      // the checkpoint just written is the place to resume from.
      if (lead) std::cerr << "saved " << checkpoint_path << " after epoch " << epoch + 1 << "; continue with --resume\n";
      result.interrupted = true;
      break;
    }
  }
  if (lead && !result.interrupted && result.epochs_done == o.epochs) {
    // The finished model alone (no optimizer state): a third of the
    // checkpoint's size, what eval/predict and deployment need.
    result.model = (fs::path(o.out_dir) / "model.safetensors").string();
    save_checkpoint(result.model, model, nullptr, info);
  }
  result.rank = rank;
  result.ranks = ranks;
  std::vector<float> values(model.params().trainable_count());
  be.download(values.data(), model.params().values(), values.size());
  result.parameters_checksum = checksum64(values.data(), values.size() * sizeof(float));
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace pointnet
