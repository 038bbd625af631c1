# Where jobs run. Pick the backend with the environment (no editing needed):
#   RUN_JOB_BACKEND=local  ./run.sh ...      (default: this machine)
#   RUN_JOB_BACKEND=slurm  ./run.sh ...      (each job through srun; set RUN_JOB_SLURM_OPTS
#                                             for partition/account, e.g. "-p gpu -A myproj")
export RUN_JOB_BACKEND=${RUN_JOB_BACKEND:-local}

# CPU work (data preparation, features, k-means, analysis)
cpu_cmd="local/run_job.sh --mem 16G --time 12:00:00"
# GPU work (pretraining, fine-tuning); the number of GPUs is added by the stage
gpu_cmd="local/run_job.sh --mem 64G --time 72:00:00"
