"""What hpcbatch gives an MPI program on the nodes of a multi-node parallel job: the hostfiles
of its allocation (:mod:`hpcbatch.mpi.hostfile`) and the environment of its interconnect
(:mod:`hpcbatch.mpi.fabric`). Pure functions, standard library only: the head builds the text,
the agent only writes it. docs/mpi.md tells the whole story."""
